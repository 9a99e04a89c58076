// The BPE model of Hugging Face tokenizers (tokenizers/src/models/bpe/{model,word}.rs):
// characters -> vocabulary ids (byte_fallback <0xNN>, unk with fuse_unk), then merges applied
// lowest rank first, leftmost first, with a heap over the pairs' positions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace csa::tok {

struct BpeConfig {
  std::unordered_map<std::string, int32_t> vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;  // "" = none
  std::string end_of_word_suffix;         // "" = none
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class BpeModel {
 public:
  // Merges naming a token (or a merged token) missing from the vocabulary, and an unk_token
  // missing from it, are FormatErrors naming `origin`.
  BpeModel(BpeConfig config, const std::string& origin);

  // Appends the ids of one pre-token (a "word"). An empty word gives nothing.
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(const std::string& token) const;
  const std::string* id_to_token(int32_t id) const;  // nullptr if no token has this id
  size_t vocab_entries() const { return vocab_.size(); }
  int32_t max_id() const { return max_id_; }

 private:
  struct Symbol {
    int32_t id;
    int32_t prev, next;  // neighbour indices, -1 at the ends
    int32_t len;         // bytes covered; 0 once merged into its left neighbour
  };
  void initial_symbols(std::string_view word, std::vector<Symbol>& symbols) const;
  void add_char_or_fallback(const std::string& piece, size_t byte_len, std::vector<Symbol>& symbols,
                            std::optional<std::pair<int32_t, int32_t>>& unk) const;
  void merge_all(std::vector<Symbol>& symbols) const;
  const std::pair<int32_t, int32_t>* find_merge(int32_t left, int32_t right) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<int32_t, std::string> vocab_r_;
  // Open addressing over (left id << 32 | right id) -> (rank, merged id): the merge loop's
  // lookups dominate encoding, and a flat table halves their cost against std::unordered_map.
  class PairTable {
   public:
    void reserve(size_t n);
    void set(uint64_t key, std::pair<int32_t, int32_t> value);
    const std::pair<int32_t, int32_t>* find(uint64_t key) const;

   private:
    struct Slot {
      uint64_t key = kEmpty;
      std::pair<int32_t, int32_t> value;
    };
    static constexpr uint64_t kEmpty = ~uint64_t{0};  // ids are non-negative: never a real key
    size_t index(uint64_t key) const;
    std::vector<Slot> slots_;
    size_t size_ = 0;
    int shift_ = 64;  // 64 - log2(slots_.size())
  };
  PairTable merges_;
  std::optional<int32_t> unk_id_;
  std::string prefix_, suffix_;
  bool fuse_unk_, byte_fallback_, ignore_merges_;
  int32_t max_id_ = -1;
};

}  // namespace csa::tok
