#include "csa/tokenizer/added_vocabulary.h"

#include <algorithm>

#include "csa/tokenizer/bpe.h"
#include "csa/tokenizer/regex.h"
#include "csa/tokenizer/unicode.h"

namespace csa::tok {

AddedToken read_added_token(const JsonReader& r) {
  AddedToken t;
  t.content = r.get_string("content");
  t.special = r.get_bool("special", false);
  t.single_word = r.get_bool("single_word", false);
  t.lstrip = r.get_bool("lstrip", false);
  t.rstrip = r.get_bool("rstrip", false);
  t.normalized = r.get_bool("normalized", !t.special);
  return t;
}

namespace {

// Rust regex's Unicode \w (added_vocabulary.rs tests single_word with ^\w and \w$).
bool is_word_char(uint32_t cp) {
  if (cp < 0x80) {
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
           cp == '_';
  }
  static const Regex kWord(R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}])",
                           "the word-character class");
  std::string s;
  append_utf8(s, cp);
  std::vector<MatchRange> m;
  kWord.find_all(s, m);
  return !m.empty();
}

bool ends_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return is_word_char(next_code_point(s, &i));
}

bool starts_with_word(std::string_view s) {
  size_t i = 0;
  return !s.empty() && is_word_char(next_code_point(s, &i));
}

// Start of the run of White_Space that ends `s` (s.size() if none).
size_t trailing_space_start(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t i = start;
    if (!is_white_space(next_code_point(s, &i))) break;
    end = start;
  }
  return end;
}

// Length of the run of White_Space that starts `s`.
size_t leading_space_length(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t next = i;
    if (!is_white_space(next_code_point(s, &next))) break;
    i = next;
  }
  return i;
}

}  // namespace

void AddedVocabulary::Matcher::build(const std::vector<Entry>& entries) {
  for (auto& list : by_first_byte) list.clear();
  empty = true;
  for (const Entry& e : entries) {
    empty = empty && e.pattern.empty();
    if (e.pattern.empty()) continue;
    by_first_byte[static_cast<unsigned char>(e.pattern[0])].push_back(&e);
  }
  for (auto& list : by_first_byte) {
    std::stable_sort(list.begin(), list.end(), [](const Entry* a, const Entry* b) {
      return a->pattern.size() > b->pattern.size();
    });
  }
}

size_t AddedVocabulary::Matcher::next_candidate(std::string_view s, size_t pos) const {
  if (empty) return s.size();
  while (pos < s.size() && by_first_byte[static_cast<unsigned char>(s[pos])].empty()) ++pos;
  return pos;
}

const AddedVocabulary::Entry* AddedVocabulary::Matcher::longest_at(std::string_view s,
                                                                   size_t pos) const {
  for (const Entry* e : by_first_byte[static_cast<unsigned char>(s[pos])]) {
    if (s.compare(pos, e->pattern.size(), e->pattern) == 0) return e;
  }
  return nullptr;
}

void AddedVocabulary::add(const std::vector<AddedToken>& tokens, const BpeModel& model,
                          const Normalizer* normalizer) {
  model_vocab_size_ = model.vocab_entries();
  for (const AddedToken& t : tokens) {
    if (t.content.empty() || ids_.count(t.content) != 0) continue;  // as HF: ignored
    int32_t id = 0;
    if (auto in_model = model.token_to_id(t.content)) {
      id = *in_model;
    } else if (ids_.empty()) {
      id = static_cast<int32_t>(model_vocab_size_);
    } else {
      int32_t max = 0;
      for (const auto& [content, other] : ids_) max = std::max(max, other);
      const auto n = static_cast<int32_t>(model_vocab_size_);
      id = (max >= n || n == 0) ? max + 1 : n;
    }
    tokens_.push_back(t);
    ids_[t.content] = id;
    contents_[id] = t.content;
    if (t.special) special_.insert(t.content);
    max_id_ = std::max(max_id_, id);
  }
  refresh(normalizer);
}

// refresh_added_tokens(): special tokens first, then the others; normalized tokens are matched
// by their normalized form.
void AddedVocabulary::refresh(const Normalizer* normalizer) {
  raw_entries_.clear();
  normalized_entries_.clear();
  for (bool special : {true, false}) {
    for (const AddedToken& t : tokens_) {
      if (t.special != special) continue;
      Entry e{t.content, ids_.at(t.content), &t};
      if (t.normalized && normalizer != nullptr) normalizer->normalize(e.pattern);
      (t.normalized ? normalized_entries_ : raw_entries_).push_back(std::move(e));
    }
  }
  raw_.build(raw_entries_);
  normalized_.build(normalized_entries_);
}

std::optional<int32_t> AddedVocabulary::token_to_id(const std::string& content) const {
  auto it = ids_.find(content);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

const std::string* AddedVocabulary::id_to_token(int32_t id) const {
  auto it = contents_.find(id);
  return it == contents_.end() ? nullptr : &it->second;
}

std::vector<TextSplit> AddedVocabulary::split(std::string_view text,
                                              const Normalizer* normalizer) const {
  std::vector<TextSplit> first;
  split_with(raw_, Piece{std::string(text), true}, first);
  std::vector<TextSplit> out;
  out.reserve(first.size());
  for (TextSplit& s : first) {
    if (s.id) {
      out.push_back(std::move(s));
      continue;
    }
    if (normalizer != nullptr) normalizer->normalize(s.piece.text);
    split_with(normalized_, std::move(s.piece), out);
  }
  return out;
}

// find_matches(): non-overlapping leftmost-longest matches; single_word may discard one, lstrip /
// rstrip widen it over White_Space. Empty stretches are dropped.
void AddedVocabulary::split_with(const Matcher& matcher, Piece&& piece,
                                 std::vector<TextSplit>& out) const {
  const std::string& s = piece.text;
  if (s.empty()) return;
  size_t start_offset = 0;
  auto emit_text = [&](size_t begin, size_t end) {
    if (begin < end)
      out.push_back({std::nullopt, {s.substr(begin, end - begin), piece.at_start && begin == 0}});
  };
  const std::string_view view(s);
  for (size_t pos = matcher.next_candidate(s, 0); pos < s.size();
       pos = matcher.next_candidate(s, pos)) {
    const Entry* e = matcher.longest_at(s, pos);
    if (e == nullptr) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + e->pattern.size();
    pos = stop;
    const AddedToken& t = *e->token;
    if (t.single_word) {
      const bool start_space = start == 0 || !ends_with_word(view.substr(0, start));
      const bool stop_space = stop == s.size() || !starts_with_word(view.substr(stop));
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) start = std::max(trailing_space_start(view.substr(0, start)), start_offset);
    if (t.rstrip) stop += leading_space_length(view.substr(stop));
    emit_text(start_offset, start);
    out.push_back({e->id, {s.substr(start, stop - start), false}});
    start_offset = stop;
  }
  emit_text(start_offset, s.size());
}

}  // namespace csa::tok
