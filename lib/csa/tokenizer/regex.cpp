#include "csa/tokenizer/regex.h"

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include <memory>
#include <new>

#include "csa/core/error.h"
#include "csa/tokenizer/unicode.h"

namespace csa::tok {
namespace {

// Unicode White_Space as class members (PropList.txt); \x{20} rather than ' ' so that an inline
// (?x) cannot drop it.
constexpr const char* kWhiteSpaceMembers =
    "\\t-\\r\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}"
    "\\x{205f}\\x{3000}";

pcre2_code* as_code(void* p) { return static_cast<pcre2_code*>(p); }

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

// Per-thread match scratch: one ovector pair (only the whole match is used) and a JIT stack
// large enough for long runs of whitespace or letters. Shared by every Regex on the thread.
struct MatchScratch {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, nullptr);
  MatchScratch() {
    if (data == nullptr || context == nullptr) throw std::bad_alloc();
    if (stack != nullptr) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchScratch() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
  MatchScratch(const MatchScratch&) = delete;
  MatchScratch& operator=(const MatchScratch&) = delete;
};

MatchScratch& scratch() {
  thread_local MatchScratch s;
  return s;
}

}  // namespace

std::string translate_onig_pattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  size_t class_start = 0;  // index just after '[' or '[^'
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      ++i;
      if (e == 's') {
        out += in_class ? std::string(kWhiteSpaceMembers)
                        : "[" + std::string(kWhiteSpaceMembers) + "]";
      } else if (e == 'S' && !in_class) {
        out += "[^" + std::string(kWhiteSpaceMembers) + "]";
      } else {
        out += '\\';
        out += e;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      class_start = i + 1;
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {  // [:alpha:]
      const size_t close = p.find(":]", i + 2);
      if (close != std::string_view::npos) {
        out.append(p.substr(i, close + 2 - i));
        i = close + 1;
        continue;
      }
    }
    if (in_class && c == ']' && i != class_start) in_class = false;
    out += c;
  }
  return out;
}

std::string escape_regex(std::string_view literal) {
  std::string out;
  for (char c : literal) {
    const auto u = static_cast<unsigned char>(c);
    const bool plain = u >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                       (c >= 'A' && c <= 'Z') || c == '_';
    if (!plain) out += '\\';
    out += c;
  }
  return out;
}

Regex::Regex(const std::string& pattern, const std::string& origin) : pattern_(pattern) {
  const std::string translated = translate_onig_pattern(pattern);
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                    PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (code == nullptr) {
    throw FormatError(origin + ": regex /" + pattern + "/ does not compile (PCRE2, offset " +
                      std::to_string(offset) +
                      " of the translated pattern): " + pcre2_message(error));
  }
  // JIT is an optimisation: where it is unavailable PCRE2 interprets the same pattern.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_ = code;
}

Regex::~Regex() { pcre2_code_free(as_code(code_)); }

void Regex::find_all(std::string_view text, std::vector<MatchRange>& out) const {
  MatchScratch& state = scratch();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t search_from = 0;
  bool have_last = false;
  size_t last_end = 0;
  while (search_from <= text.size()) {
    // The caller validated the UTF-8 once; checking it again per call would be quadratic.
    const int rc = pcre2_match(as_code(code_), subject, text.size(), search_from,
                               PCRE2_NO_UTF_CHECK, state.data, state.context);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc < 0) {  // rc == 0 only says the one-pair ovector is short: the match is there
      throw InputError("regex /" + pattern_ + "/ failed at byte " + std::to_string(search_from) +
                       ": " + pcre2_message(rc));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(state.data);
    const size_t start = ov[0], end = ov[1];
    if (start == end && have_last && last_end == end) {
      // onig::FindMatches: no empty match right after the previous match; step one character.
      if (search_from >= text.size()) return;
      search_from += code_point_length(text, search_from);
      continue;
    }
    out.push_back({start, end});
    have_last = true;
    last_end = end;
    search_from = end;
  }
}

TextPattern TextPattern::parse(const Json& j, const std::string& origin, const std::string& field) {
  const bool one_key = j.is_object() && j.size() == 1;
  if (one_key && j.contains("String") && j.at("String").is_string())
    return literal(j.at("String").get<std::string>());
  if (one_key && j.contains("Regex") && j.at("Regex").is_string())
    return regex(j.at("Regex").get<std::string>(), origin + " (field '" + field + "')");
  throw FormatError(origin + ": field '" + field +
                    "' must be {\"String\": ...} or {\"Regex\": ...}, got " + j.dump());
}

TextPattern TextPattern::literal(std::string text) {
  if (text.empty()) return regex("", "empty literal pattern");  // matches between characters
  TextPattern p;
  p.literal_ = std::move(text);
  return p;
}

TextPattern TextPattern::regex(const std::string& pattern, const std::string& origin) {
  TextPattern p;
  p.regex_ = std::make_shared<const Regex>(pattern, origin);
  return p;
}

void TextPattern::find_all(std::string_view text, std::vector<MatchRange>& out) const {
  if (regex_) {
    regex_->find_all(text, out);
    return;
  }
  for (size_t at = text.find(literal_); at != std::string_view::npos;
       at = text.find(literal_, at + literal_.size())) {
    out.push_back({at, at + literal_.size()});
  }
}

std::string TextPattern::replace_all(std::string_view text, std::string_view content) const {
  std::vector<MatchRange> matches;
  find_all(text, matches);
  if (matches.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size() + matches.size() * content.size());
  size_t prev = 0;
  for (const MatchRange& m : matches) {
    out.append(text.substr(prev, m.start - prev));
    out.append(content);
    prev = m.end;
  }
  out.append(text.substr(prev));
  return out;
}

}  // namespace csa::tok
