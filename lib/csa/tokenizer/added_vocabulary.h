// Added tokens (tokenizers/src/tokenizer/added_vocabulary.rs): matched in the raw text before
// normalization (normalized=false) or in the normalized text (normalized=true), leftmost-longest,
// with the single_word / lstrip / rstrip rules; the text between them goes through the pipeline.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "csa/core/json.h"
#include "csa/tokenizer/pipeline.h"

namespace csa::tok {

class BpeModel;

struct AddedToken {
  std::string content;
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
};

// One added-token object as tokenizer.json's `added_tokens` and tokenizer_config.json's
// `added_tokens_decoder` write it: content, special, single_word, lstrip, rstrip, normalized.
AddedToken read_added_token(const JsonReader& r);

// A stretch of the input: an added token (id set) or text for the pipeline.
struct TextSplit {
  std::optional<int32_t> id;
  Piece piece;
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  AddedVocabulary(AddedVocabulary&&) = default;  // entries point into vectors that move along
  AddedVocabulary& operator=(AddedVocabulary&&) = default;
  AddedVocabulary(const AddedVocabulary&) = delete;
  AddedVocabulary& operator=(const AddedVocabulary&) = delete;
  // Adds tokens in order, with HF's ids: a token already in the model's vocabulary keeps that
  // id, others get the next id past the model's vocabulary size.
  void add(const std::vector<AddedToken>& tokens, const BpeModel& model,
           const Normalizer* normalizer);

  // Splits `text` around added tokens, normalizing the stretches between them.
  std::vector<TextSplit> split(std::string_view text, const Normalizer* normalizer) const;

  std::optional<int32_t> token_to_id(const std::string& content) const;
  const std::string* id_to_token(int32_t id) const;
  bool is_special(const std::string& content) const { return special_.count(content) != 0; }
  int32_t max_id() const { return max_id_; }

 private:
  struct Entry {
    std::string pattern;  // content, normalized for normalized tokens
    int32_t id;
    const AddedToken* token;
  };
  // Tokens grouped by first byte, longest first: leftmost-longest matching.
  struct Matcher {
    std::vector<std::vector<const Entry*>> by_first_byte =
        std::vector<std::vector<const Entry*>>(256);
    void build(const std::vector<Entry>& entries);
    // The longest entry matching at `pos`, or nullptr.
    const Entry* longest_at(std::string_view s, size_t pos) const;
    // The first position >= pos where an entry may start (s.size() if none).
    size_t next_candidate(std::string_view s, size_t pos) const;
    bool empty = true;
  };
  void refresh(const Normalizer* normalizer);
  void split_with(const Matcher& matcher, Piece&& piece, std::vector<TextSplit>& out) const;

  std::vector<AddedToken> tokens_;  // insertion order: special tokens first when refreshing
  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_map<int32_t, std::string> contents_;
  std::unordered_set<std::string> special_;
  std::vector<Entry> raw_entries_, normalized_entries_;
  Matcher raw_, normalized_;
  size_t model_vocab_size_ = 0;
  int32_t max_id_ = -1;
};

}  // namespace csa::tok
