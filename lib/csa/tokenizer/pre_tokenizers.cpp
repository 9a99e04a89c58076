// Pre-tokenizers (tokenizers/src/pre_tokenizers): ByteLevel, Split, Metaspace, Digits, Sequence,
// over NormalizedString::split's five delimiter behaviours
// (tokenizers/src/tokenizer/normalizer.rs).
#include "csa/tokenizer/pipeline.h"
#include "csa/tokenizer/regex.h"
#include "csa/tokenizer/stage_json.h"
#include "csa/tokenizer/unicode.h"

namespace csa::tok {
namespace {

constexpr const char* kSupported = "ByteLevel, Split, Metaspace, Digits, Sequence";
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct Span {
  size_t start, end;
  bool is_match;
};

// Pattern::find_matches: the matches and the gaps between them, covering the text.
std::vector<Span> covering_spans(const std::vector<MatchRange>& matches, size_t size, bool invert) {
  std::vector<Span> spans;
  spans.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (const MatchRange& m : matches) {
    if (prev != m.start) spans.push_back({prev, m.start, invert});
    spans.push_back({m.start, m.end, !invert});
    prev = m.end;
  }
  if (prev != size) spans.push_back({prev, size, invert});
  return spans;
}

// Returns the [start, end) ranges to keep, per NormalizedString::split.
std::vector<Span> apply_behavior(const std::vector<Span>& spans, SplitBehavior behavior) {
  std::vector<Span> out;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      return spans;
    case SplitBehavior::kRemoved:
      for (const Span& s : spans)
        if (!s.is_match) out.push_back(s);
      return out;
    case SplitBehavior::kContiguous:
      for (const Span& s : spans) {
        if (s.is_match == previous_match && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back(s);
        }
        previous_match = s.is_match;
      }
      return out;
    case SplitBehavior::kMergedWithPrevious:
      for (const Span& s : spans) {
        if (s.is_match && !previous_match && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back(s);
        }
        previous_match = s.is_match;
      }
      return out;
    case SplitBehavior::kMergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !out.empty()) {
          out.back().start = it->start;
        } else {
          out.push_back(*it);
        }
        previous_match = it->is_match;
      }
      return {out.rbegin(), out.rend()};
  }
  return out;
}

// Splits `piece` at `matches`; only the first sub-piece keeps `at_start`. Empty ones are dropped.
void split_piece(Piece&& piece, const std::vector<MatchRange>& matches, SplitBehavior behavior,
                 bool invert, std::vector<Piece>& out) {
  if (piece.text.empty()) return;
  const auto kept = apply_behavior(covering_spans(matches, piece.text.size(), invert), behavior);
  if (kept.size() == 1 && kept[0].start == 0 && kept[0].end == piece.text.size()) {
    out.push_back(std::move(piece));
    return;
  }
  for (const Span& s : kept) {
    if (s.start == s.end) continue;
    out.push_back({piece.text.substr(s.start, s.end - s.start), piece.at_start && s.start == 0});
  }
}

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space),
        regex_(use_regex ? std::make_unique<Regex>(kGpt2Pattern, "ByteLevel") : nullptr) {}

  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size());
    std::vector<MatchRange> matches;
    for (Piece& p : pieces) {
      if (add_prefix_space_ && !p.text.empty() && p.text[0] != ' ') p.text.insert(0, 1, ' ');
      if (!regex_) {
        if (!p.text.empty()) out.push_back(std::move(p));
        continue;
      }
      matches.clear();
      regex_->find_all(p.text, matches);
      split_piece(std::move(p), matches, SplitBehavior::kIsolated, false, out);
    }
    for (Piece& p : out) {
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      append_byte_level(p.text, mapped);
      p.text = std::move(mapped);
    }
    pieces = std::move(out);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(TextPattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}

  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size());
    std::vector<MatchRange> matches;
    for (Piece& p : pieces) {
      matches.clear();
      pattern_.find_all(p.text, matches);
      split_piece(std::move(p), matches, behavior_, invert_, out);
    }
    pieces = std::move(out);
  }

 private:
  TextPattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

// metaspace.rs: spaces become the replacement, a replacement is prepended (always, or only to
// the piece at the start of the input), then optionally split before each replacement.
class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)),
        spaces_(TextPattern::literal(" ")),
        marks_(TextPattern::literal(replacement_)),
        scheme_(scheme),
        split_(split) {}

  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size());
    std::vector<MatchRange> matches;
    for (Piece& p : pieces) {
      p.text = spaces_.replace_all(p.text, replacement_);
      const bool prepend =
          scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && p.at_start);
      if (prepend && !p.text.empty() && p.text.compare(0, replacement_.size(), replacement_) != 0)
        p.text.insert(0, replacement_);
      if (!split_) {
        if (!p.text.empty()) out.push_back(std::move(p));
        continue;
      }
      matches.clear();
      marks_.find_all(p.text, matches);
      split_piece(std::move(p), matches, SplitBehavior::kMergedWithNext, false, out);
    }
    pieces = std::move(out);
  }

 private:
  std::string replacement_;
  TextPattern spaces_, marks_;
  PrependScheme scheme_;
  bool split_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> stages)
      : stages_(std::move(stages)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& s : stages_) s->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> stages_;
};

SplitBehavior parse_behavior(const JsonReader& r) {
  const std::string b = r.get_string("behavior");
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  r.fail("behavior",
         "must be Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous, got '" + b +
             "'");
}

std::unique_ptr<PreTokenizer> make_split(const Json& j, const JsonReader& r,
                                         const std::string& origin, const std::string& field) {
  if (!j.contains("pattern")) r.fail("pattern", "is missing");
  return std::make_unique<SplitPreTokenizer>(
      TextPattern::parse(j.at("pattern"), origin, field + ".pattern"), parse_behavior(r),
      r.get_bool("invert", false));
}

std::unique_ptr<PreTokenizer> make_sequence(const Json& j, const std::string& origin,
                                            const std::string& field) {
  std::vector<std::unique_ptr<PreTokenizer>> stages;
  const Json& list = array_field(j, "pretokenizers", origin, field);
  for (size_t i = 0; i < list.size(); ++i) {
    auto s =
        make_pre_tokenizer(list[i], origin, field + ".pretokenizers[" + std::to_string(i) + "]");
    if (s) stages.push_back(std::move(s));
  }
  return std::make_unique<SequencePreTokenizer>(std::move(stages));
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, const std::string& origin,
                                                 const std::string& field) {
  if (j.is_null()) return nullptr;
  const std::string type = stage_type(j, origin, field);
  const JsonReader r(j, origin, field + ".");
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPreTokenizer>(r.get_bool("add_prefix_space", true),
                                                   r.get_bool("use_regex", true));
  if (type == "Split") return make_split(j, r, origin, field);
  if (type == "Metaspace")
    return std::make_unique<MetaspacePreTokenizer>(
        char_field(r, "replacement"), parse_prepend_scheme(r), r.get_bool("split", true));
  if (type == "Digits") {
    // digits.rs: split on char::is_numeric, each digit alone or runs of digits together.
    const bool individual = r.get_bool("individual_digits", false);
    return std::make_unique<SplitPreTokenizer>(
        TextPattern::regex("\\p{N}", origin),
        individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous, false);
  }
  if (type == "Sequence") return make_sequence(j, origin, field);
  throw_unsupported_stage("pre-tokenizer", type, origin, field, kSupported);
}

std::unique_ptr<PreTokenizer> make_gpt2_pre_tokenizer() {
  return std::make_unique<ByteLevelPreTokenizer>(false, true);
}

}  // namespace csa::tok
