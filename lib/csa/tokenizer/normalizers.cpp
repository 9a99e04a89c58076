// Normalizers (tokenizers/src/normalizers): Sequence, Prepend, Replace, Strip.
#include "csa/tokenizer/pipeline.h"
#include "csa/tokenizer/regex.h"
#include "csa/tokenizer/stage_json.h"
#include "csa/tokenizer/unicode.h"

namespace csa::tok {
namespace {

constexpr const char* kSupported = "Sequence, Prepend, Replace, Strip";

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> stages)
      : stages_(std::move(stages)) {}
  void normalize(std::string& text) const override {
    for (const auto& s : stages_) s->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> stages_;
};

// prepend.rs: only a non-empty string gets the prefix.
class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(TextPattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& text) const override { text = pattern_.replace_all(text, content_); }

 private:
  TextPattern pattern_;
  std::string content_;
};

// strip.rs: trims White_Space characters (Rust's trim_start / trim_end).
class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override {
    size_t begin = 0, end = text.size();
    if (left_) {
      while (begin < end) {
        size_t i = begin;
        if (!is_white_space(next_code_point(text, &i))) break;
        begin = i;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        size_t i = start;
        if (!is_white_space(next_code_point(text, &i))) break;
        end = start;
      }
    }
    text = text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const Json& j, const std::string& origin,
                                            const std::string& field) {
  if (j.is_null()) return nullptr;
  const std::string type = stage_type(j, origin, field);
  const JsonReader r(j, origin, field + ".");
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> stages;
    const Json& list = array_field(j, "normalizers", origin, field);
    for (size_t i = 0; i < list.size(); ++i) {
      auto s = make_normalizer(list[i], origin, field + ".normalizers[" + std::to_string(i) + "]");
      if (s) stages.push_back(std::move(s));
    }
    return std::make_unique<SequenceNormalizer>(std::move(stages));
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(r.get_string("prepend"));
  if (type == "Replace") {
    if (!j.contains("pattern")) r.fail("pattern", "is missing");
    return std::make_unique<ReplaceNormalizer>(
        TextPattern::parse(j.at("pattern"), origin, field + ".pattern"), r.get_string("content"));
  }
  if (type == "Strip")
    return std::make_unique<StripNormalizer>(r.get_bool("strip_left", true),
                                             r.get_bool("strip_right", true));
  throw_unsupported_stage("normalizer", type, origin, field, kSupported);
}

}  // namespace csa::tok
