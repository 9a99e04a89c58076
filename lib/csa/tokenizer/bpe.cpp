#include "csa/tokenizer/bpe.h"

#include <queue>

#include "csa/core/error.h"
#include "csa/tokenizer/unicode.h"

namespace csa::tok {
namespace {

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// A queued merge; the heap pops the lowest rank, then the leftmost position (word.rs, Merge).
struct MergeCandidate {
  int32_t pos, rank, new_id;
  bool operator<(const MergeCandidate& o) const {
    return rank != o.rank ? rank > o.rank : pos > o.pos;
  }
};

std::string byte_token(unsigned char b) {
  static const char kHex[] = "0123456789ABCDEF";
  return std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
}

}  // namespace

void BpeModel::PairTable::reserve(size_t n) {
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(cap, Slot{});
  shift_ = 64;
  for (size_t c = cap; c > 1; c /= 2) --shift_;
  size_ = 0;
  for (const Slot& s : old)
    if (s.key != kEmpty) set(s.key, s.value);
}

size_t BpeModel::PairTable::index(uint64_t key) const {
  // Fibonacci hashing: the top bits of the product depend on every bit of the key.
  return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
}

void BpeModel::PairTable::set(uint64_t key, std::pair<int32_t, int32_t> value) {
  if (2 * (size_ + 1) > slots_.size()) reserve(size_ + 1);
  for (size_t i = index(key);; i = (i + 1) & (slots_.size() - 1)) {
    if (slots_[i].key == key) {
      slots_[i].value = value;
      return;
    }
    if (slots_[i].key == kEmpty) {
      slots_[i] = {key, value};
      ++size_;
      return;
    }
  }
}

const std::pair<int32_t, int32_t>* BpeModel::PairTable::find(uint64_t key) const {
  if (slots_.empty()) return nullptr;
  for (size_t i = index(key);; i = (i + 1) & (slots_.size() - 1)) {
    if (slots_[i].key == key) return &slots_[i].value;
    if (slots_[i].key == kEmpty) return nullptr;
  }
}

BpeModel::BpeModel(BpeConfig config, const std::string& origin)
    : vocab_(std::move(config.vocab)),
      prefix_(std::move(config.continuing_subword_prefix)),
      suffix_(std::move(config.end_of_word_suffix)),
      fuse_unk_(config.fuse_unk),
      byte_fallback_(config.byte_fallback),
      ignore_merges_(config.ignore_merges) {
  for (const auto& [token, id] : vocab_) {
    vocab_r_.emplace(id, token);
    max_id_ = std::max(max_id_, id);
  }
  if (config.unk_token) {
    auto it = vocab_.find(*config.unk_token);
    if (it == vocab_.end())
      throw FormatError(origin + ": model.unk_token '" + *config.unk_token +
                        "' is not in the vocabulary");
    unk_id_ = it->second;
  }
  auto id_of = [&](const std::string& token, size_t rank) {
    auto it = vocab_.find(token);
    if (it == vocab_.end())
      throw FormatError(origin + ": merge " + std::to_string(rank + 1) + " ('" +
                        config.merges[rank].first + " " + config.merges[rank].second + "') uses '" +
                        token + "', which is not in the vocabulary");
    return it->second;
  };
  merges_.reserve(config.merges.size());
  for (size_t rank = 0; rank < config.merges.size(); ++rank) {
    const auto& [a, b] = config.merges[rank];
    if (b.size() < prefix_.size() || b.compare(0, prefix_.size(), prefix_) != 0) {
      if (!prefix_.empty())
        throw FormatError(origin + ": merge " + std::to_string(rank) + " right part '" + b +
                          "' lacks the continuing_subword_prefix '" + prefix_ + "'");
    }
    const int32_t left = id_of(a, rank), right = id_of(b, rank);
    const int32_t merged = id_of(a + b.substr(prefix_.size()), rank);
    // Later duplicates overwrite earlier ones, as collecting into HF's MergeMap does.
    merges_.set(pair_key(left, right), {static_cast<int32_t>(rank), merged});
  }
}

std::optional<int32_t> BpeModel::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  auto it = vocab_r_.find(id);
  return it == vocab_r_.end() ? nullptr : &it->second;
}

const std::pair<int32_t, int32_t>* BpeModel::find_merge(int32_t left, int32_t right) const {
  return merges_.find(pair_key(left, right));
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    auto it = vocab_.find(std::string(word));
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  initial_symbols(word, symbols);
  merge_all(symbols);
  for (const Symbol& s : symbols)
    if (s.len != 0) out.push_back(s.id);
}

// model.rs, merge_word(): each character (with prefix / suffix) is a symbol; unknown ones become
// <0xNN> byte tokens (byte_fallback) or the unk token (fused when fuse_unk).
void BpeModel::initial_symbols(std::string_view word, std::vector<Symbol>& symbols) const {
  std::optional<std::pair<int32_t, int32_t>> unk;  // pending (unk id, byte length)
  std::string piece;
  for (size_t i = 0; i < word.size();) {
    const size_t n = code_point_length(word, i);
    const bool is_first = i == 0, is_last = i + n >= word.size();
    piece.clear();
    if (!is_first) piece += prefix_;
    piece.append(word.substr(i, n));
    if (is_last) piece += suffix_;
    add_char_or_fallback(piece, n, symbols, unk);
    i += n;
  }
  if (unk) symbols.push_back({unk->first, -1, -1, unk->second});
  for (size_t k = 0; k < symbols.size(); ++k) {
    symbols[k].prev = static_cast<int32_t>(k) - 1;
    symbols[k].next = k + 1 < symbols.size() ? static_cast<int32_t>(k + 1) : -1;
  }
}

void BpeModel::add_char_or_fallback(const std::string& piece, size_t byte_len,
                                    std::vector<Symbol>& symbols,
                                    std::optional<std::pair<int32_t, int32_t>>& unk) const {
  const auto len = static_cast<int32_t>(byte_len);
  auto it = vocab_.find(piece);
  if (it != vocab_.end()) {
    if (unk) symbols.push_back({unk->first, -1, -1, unk->second});
    unk.reset();
    symbols.push_back({it->second, -1, -1, len});
    return;
  }
  if (byte_fallback_) {
    std::vector<int32_t> bytes;
    for (char c : piece) {
      auto b = vocab_.find(byte_token(static_cast<unsigned char>(c)));
      if (b == vocab_.end()) break;
      bytes.push_back(b->second);
    }
    if (bytes.size() == piece.size()) {
      // As in HF, a pending unk is not flushed here (it lands after these bytes).
      for (int32_t id : bytes) symbols.push_back({id, -1, -1, 1});
      return;
    }
  }
  if (!unk_id_) return;  // no unk token: the character is dropped, as HF does
  if (unk && fuse_unk_) {
    unk->second += len;
    return;
  }
  if (unk) symbols.push_back({unk->first, -1, -1, unk->second});
  unk = std::make_pair(*unk_id_, len);
}

// word.rs, Word::merge_all() without dropout.
void BpeModel::merge_all(std::vector<Symbol>& symbols) const {
  std::priority_queue<MergeCandidate> queue;
  for (size_t k = 0; k + 1 < symbols.size(); ++k) {
    if (const auto* m = find_merge(symbols[k].id, symbols[k + 1].id))
      queue.push({static_cast<int32_t>(k), m->first, m->second});
  }
  while (!queue.empty()) {
    const MergeCandidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (left.len == 0 || left.next == -1) continue;
    const int32_t right_pos = left.next;
    const Symbol right = symbols[right_pos];
    const auto* current = find_merge(left.id, right.id);
    if (current == nullptr || current->second != top.new_id) continue;  // stale entry
    left.id = top.new_id;
    left.len += right.len;
    left.next = right.next;
    symbols[right_pos].len = 0;
    if (right.next != -1) symbols[right.next].prev = top.pos;
    if (left.prev != -1) {
      if (const auto* m = find_merge(symbols[left.prev].id, left.id))
        queue.push({left.prev, m->first, m->second});
    }
    if (left.next != -1) {
      if (const auto* m = find_merge(left.id, symbols[left.next].id))
        queue.push({top.pos, m->first, m->second});
    }
  }
}

}  // namespace csa::tok
