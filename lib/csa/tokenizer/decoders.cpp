// Decoders (tokenizers/src/decoders): ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip,
// Sequence. Each maps the list of token strings to a new list; the results are concatenated.
#include "csa/core/utf8.h"
#include "csa/tokenizer/pipeline.h"
#include "csa/tokenizer/regex.h"
#include "csa/tokenizer/stage_json.h"
#include "csa/tokenizer/unicode.h"

namespace csa::tok {
namespace {

constexpr const char* kSupported =
    "ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence";

// byte_level.rs: every token whose characters all belong to the byte alphabet becomes those
// bytes, any other token its own UTF-8; the whole is decoded lossily (U+FFFD per bad subpart).
class ByteLevelDecoder final : public DecodeStage {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) append_token_bytes(t, bytes);
    tokens.assign(1, replace_invalid_utf8(bytes));
  }

 private:
  static void append_token_bytes(const std::string& token, std::string& bytes) {
    const size_t mark = bytes.size();
    for (size_t i = 0; i < token.size();) {
      const int b = byte_level_byte(next_code_point(token, &i));
      if (b < 0) {
        bytes.resize(mark);
        bytes += token;
        return;
      }
      bytes += static_cast<char>(b);
    }
  }
};

// metaspace.rs: the replacement becomes a space, except in the first token (every replacement
// there is dropped) unless prepend_scheme is never.
class MetaspaceDecoder final : public DecodeStage {
 public:
  MetaspaceDecoder(std::string replacement, PrependScheme scheme)
      : replacement_(std::move(replacement)), scheme_(scheme) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      const bool drop = i == 0 && scheme_ != PrependScheme::kNever;
      tokens[i] = TextPattern::literal(replacement_).replace_all(tokens[i], drop ? "" : " ");
    }
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
};

class ReplaceDecoder final : public DecodeStage {
 public:
  ReplaceDecoder(TextPattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) t = pattern_.replace_all(t, content_);
  }

 private:
  TextPattern pattern_;
  std::string content_;
};

// byte_fallback.rs: runs of <0xNN> tokens become their bytes if those are valid UTF-8, else one
// U+FFFD per byte token.
class ByteFallbackDecoder final : public DecodeStage {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    size_t pending_count = 0;
    auto flush = [&] {
      if (pending_count == 0) return;
      if (!find_invalid_utf8(pending)) {
        out.push_back(pending);
      } else {
        for (size_t k = 0; k < pending_count; ++k) out.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
      pending_count = 0;
    };
    for (std::string& t : tokens) {
      const int b = byte_of(t);
      if (b >= 0) {
        pending += static_cast<char>(b);
        ++pending_count;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  // "<0xNN>" -> NN, as u8::from_str_radix(&token[3..5], 16) reads it (a leading '+' included).
  static int byte_of(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    const int hi = hex_value(t[3]), lo = hex_value(t[4]);
    if (t[3] == '+' && lo >= 0) return lo;
    return hi >= 0 && lo >= 0 ? hi * 16 + lo : -1;
  }
};

class FuseDecoder final : public DecodeStage {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const std::string& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

// strip.rs: removes up to `start` leading and `stop` trailing copies of one character.
class StripDecoder final : public DecodeStage {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) t = strip(t);
  }

 private:
  std::string strip(const std::string& t) const {
    std::vector<size_t> starts;  // byte offset of each character
    for (size_t i = 0; i < t.size(); i += code_point_length(t, i)) starts.push_back(i);
    starts.push_back(t.size());
    const size_t n = starts.size() - 1;
    auto is_content = [&](size_t k) {
      return t.compare(starts[k], starts[k + 1] - starts[k], content_) == 0;
    };
    size_t cut_start = 0, cut_stop = n;
    for (size_t k = 0; k < std::min(start_, n) && is_content(k); ++k) cut_start = k + 1;
    for (size_t k = 0; k < std::min(stop_, n) && is_content(n - k - 1); ++k) cut_stop = n - k - 1;
    if (cut_stop <= cut_start) return "";
    return t.substr(starts[cut_start], starts[cut_stop] - starts[cut_start]);
  }
  std::string content_;
  size_t start_, stop_;
};

class SequenceDecoder final : public DecodeStage {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<DecodeStage>> stages)
      : stages_(std::move(stages)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& s : stages_) s->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<DecodeStage>> stages_;
};

size_t count_field(const JsonReader& r, const std::string& key) {
  const int64_t v = r.get_int(key, 0);
  if (v < 0) r.fail(key, "must not be negative, got " + std::to_string(v));
  return static_cast<size_t>(v);
}

std::unique_ptr<DecodeStage> make_sequence(const Json& j, const std::string& origin,
                                           const std::string& field) {
  std::vector<std::unique_ptr<DecodeStage>> stages;
  const Json& list = array_field(j, "decoders", origin, field);
  for (size_t i = 0; i < list.size(); ++i) {
    auto s = make_decoder(list[i], origin, field + ".decoders[" + std::to_string(i) + "]");
    if (s) stages.push_back(std::move(s));
  }
  return std::make_unique<SequenceDecoder>(std::move(stages));
}

}  // namespace

std::unique_ptr<DecodeStage> make_decoder(const Json& j, const std::string& origin,
                                          const std::string& field) {
  if (j.is_null()) return nullptr;
  const std::string type = stage_type(j, origin, field);
  const JsonReader r(j, origin, field + ".");
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace")
    return std::make_unique<MetaspaceDecoder>(char_field(r, "replacement"),
                                              parse_prepend_scheme(r));
  if (type == "Replace") {
    if (!j.contains("pattern")) r.fail("pattern", "is missing");
    return std::make_unique<ReplaceDecoder>(
        TextPattern::parse(j.at("pattern"), origin, field + ".pattern"), r.get_string("content"));
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip")
    return std::make_unique<StripDecoder>(char_field(r, "content"), count_field(r, "start"),
                                          count_field(r, "stop"));
  if (type == "Sequence") return make_sequence(j, origin, field);
  throw_unsupported_stage("decoder", type, origin, field, kSupported);
}

std::unique_ptr<DecodeStage> make_byte_level_decoder() {
  return std::make_unique<ByteLevelDecoder>();
}

}  // namespace csa::tok
