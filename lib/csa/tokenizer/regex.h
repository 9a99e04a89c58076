// Regular expressions for tokenizer.json patterns, through PCRE2 (UTF + UCP, JIT-compiled).
// Hugging Face tokenizers compiles these with Oniguruma; the two agree on \p{..}, lookaround and
// (?i:...), but PCRE2's \s lacks U+0085, so \s and \S are rewritten to Oniguruma's class
// (Unicode White_Space) before compiling -- see translate_onig_pattern().
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "csa/core/json.h"

namespace csa::tok {

struct MatchRange {
  size_t start = 0, end = 0;  // byte offsets, [start, end)
};

class Regex {
 public:
  // A pattern as written in tokenizer.json (Oniguruma syntax). Errors are FormatErrors naming
  // `origin` and PCRE2's message with its offset.
  Regex(const std::string& pattern, const std::string& origin);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // All non-overlapping matches in `text` (valid UTF-8), left to right, with the `onig` crate's
  // find_iter rule for empty matches (one right after the previous match is skipped).
  void find_all(std::string_view text, std::vector<MatchRange>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8
};

// Rewrites Oniguruma's \s / \S (outside and \s inside character classes) to explicit
// White_Space classes; everything else is passed through.
std::string translate_onig_pattern(std::string_view pattern);
// A pattern that matches `literal` exactly (Rust regex::escape, for SplitPattern::String).
std::string escape_regex(std::string_view literal);

// A "pattern" field: {"String": literal} or {"Regex": Oniguruma pattern}.
class TextPattern {
 public:
  static TextPattern parse(const Json& j, const std::string& origin, const std::string& field);
  static TextPattern literal(std::string text);
  static TextPattern regex(const std::string& pattern, const std::string& origin);
  void find_all(std::string_view text, std::vector<MatchRange>& out) const;
  std::string replace_all(std::string_view text, std::string_view content) const;

 private:
  std::string literal_;
  std::shared_ptr<const Regex> regex_;  // null for a non-empty literal
};

}  // namespace csa::tok
