// llama2.c's tokenizer.bin / tok512.bin (karpathy/llama2.c, tokenizer.py export, run.c):
//   int32 max_token_length, then per token: float32 score, int32 length, bytes.
// Encoding follows run.c's encode(): optional BOS (id 1), a dummy-prefix " " token when the text
// is not empty, one token per code point (or its bytes as ids byte + 3), then repeatedly the
// adjacent pair whose concatenation is in the vocabulary with the highest score, leftmost on ties.
// Decoding follows run.c's decode(): the leading space of a piece right after BOS is dropped,
// and <0xNN> pieces are bytes.
#include <cstring>
#include <queue>
#include <unordered_map>

#include "csa/core/error.h"
#include "csa/core/utf8.h"
#include "csa/tokenizer/factories.h"
#include "csa/tokenizer/unicode.h"

namespace csa::tok {
namespace {

constexpr int32_t kBos = 1, kEos = 2;  // hard-wired in run.c
constexpr int32_t kByteOffset = 3;     // <0x00> is id 3: after <unk>, <s>, </s>
constexpr float kNoMerge = -1e10f;     // run.c's initial best_score

struct Vocab {
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::unordered_map<std::string, int32_t> ids;  // first id of each piece, as bsearch finds one
};

template <typename T>
T read_le(const std::string& data, size_t* pos, const std::string& origin, const char* what) {
  if (data.size() - *pos < sizeof(T))
    throw FormatError(origin + ": truncated at byte " + std::to_string(*pos) + " (expected " +
                      what + ")");
  T v;
  std::memcpy(&v, data.data() + *pos, sizeof(T));
  *pos += sizeof(T);
  return v;
}

Vocab read_vocab(const std::string& data, const std::string& origin) {
  size_t pos = 0;
  const auto max_len = read_le<int32_t>(data, &pos, origin, "max_token_length");
  if (max_len <= 0)
    throw FormatError(origin + ": max_token_length is " + std::to_string(max_len) +
                      ", not a positive length");
  Vocab v;
  while (pos < data.size()) {
    const auto index = std::to_string(v.pieces.size());
    const float score = read_le<float>(data, &pos, origin, ("score of token " + index).c_str());
    const auto len = read_le<int32_t>(data, &pos, origin, ("length of token " + index).c_str());
    if (len < 0 || len > max_len)
      throw FormatError(origin + ": token " + index + " has length " + std::to_string(len) +
                        " (max_token_length is " + std::to_string(max_len) + ")");
    if (data.size() - pos < static_cast<size_t>(len))
      throw FormatError(origin + ": truncated inside token " + index);
    v.pieces.emplace_back(data, pos, static_cast<size_t>(len));
    v.scores.push_back(score);
    v.ids.emplace(v.pieces.back(), static_cast<int32_t>(v.pieces.size() - 1));
    pos += static_cast<size_t>(len);
  }
  if (v.pieces.size() <= kEos)
    throw FormatError(origin + ": holds " + std::to_string(v.pieces.size()) +
                      " tokens; llama2.c needs at least <unk>, <s>, </s>");
  return v;
}

// "<0xNN>" -> NN (run.c: sscanf(piece, "<0x%02hhX>")), else -1.
int byte_piece(const std::string& p) {
  if (p.size() != 6 || p.compare(0, 3, "<0x") != 0 || p[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  const int hi = hex(p[3]), lo = hex(p[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

class Llama2cTokenizer final : public Tokenizer {
 public:
  explicit Llama2cTokenizer(const SideFile& file)
      : v_(read_vocab(*file.content, file.label)), label_(file.label) {}

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& opts) const override {
    const std::string input = checked_text(text, opts, description());
    std::vector<int32_t> ids;
    if (opts.add_special_tokens) ids.push_back(kBos);
    if (!input.empty()) {
      auto space = v_.ids.find(" ");
      if (space == v_.ids.end())
        throw FormatError(label_ + ": has no \" \" piece for llama2.c's dummy prefix");
      ids.push_back(space->second);
    }
    append_code_points(input, ids);
    merge(ids);
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override {
    std::string bytes;
    for (size_t i = 0; i < ids.size(); ++i) {
      check_id(ids[i], vocab_size(), description());
      if (skip_special_tokens && ids[i] <= kEos) continue;
      const std::string& piece = v_.pieces[ids[i]];
      const int b = byte_piece(piece);
      if (b >= 0) {
        bytes += static_cast<char>(b);
      } else if (i > 0 && ids[i - 1] == kBos && !piece.empty() && piece[0] == ' ') {
        bytes.append(piece, 1, std::string::npos);
      } else {
        bytes += piece;
      }
    }
    return replace_invalid_utf8(bytes);
  }

  int64_t vocab_size() const override { return static_cast<int64_t>(v_.pieces.size()); }
  std::optional<int32_t> bos_id() const override { return kBos; }
  std::optional<int32_t> eos_id() const override { return kEos; }
  std::string description() const override {
    return "llama2.c (" + label_ + ", " + std::to_string(vocab_size()) + " tokens)";
  }

 private:
  // One token per code point if it is a piece, else its bytes (id byte + 3).
  void append_code_points(const std::string& text, std::vector<int32_t>& ids) const {
    for (size_t i = 0; i < text.size();) {
      const size_t n = code_point_length(text, i);
      auto it = v_.ids.find(text.substr(i, n));
      if (it != v_.ids.end()) {
        ids.push_back(it->second);
      } else {
        for (size_t k = 0; k < n; ++k) {
          const int32_t id = static_cast<unsigned char>(text[i + k]) + kByteOffset;
          if (id >= vocab_size())
            throw InputError(description() + ": no byte token for byte " +
                             std::to_string(id - kByteOffset) + " at offset " +
                             std::to_string(i + k));
          ids.push_back(id);
        }
      }
      i += n;
    }
  }

  // The merged id of the pair (left, right) if it is a piece with a score above kNoMerge.
  std::optional<int32_t> merged(int32_t left, int32_t right) const {
    auto it = v_.ids.find(v_.pieces[left] + v_.pieces[right]);
    if (it == v_.ids.end() || !(v_.scores[it->second] > kNoMerge)) return std::nullopt;
    return it->second;
  }

  // run.c's loop (best score, leftmost on ties) with a heap over a linked list.
  void merge(std::vector<int32_t>& ids) const {
    struct Candidate {
      float score;
      int32_t pos, left, right, merged;
      bool operator<(const Candidate& o) const {
        return score != o.score ? score < o.score : pos > o.pos;
      }
    };
    const auto n = static_cast<int32_t>(ids.size());
    std::vector<int32_t> next(n), prev(n);
    std::vector<bool> alive(n, true);
    std::priority_queue<Candidate> queue;
    std::unordered_map<uint64_t, int32_t> memo;  // (left, right) -> merged id or -1
    auto push = [&](int32_t pos) {
      if (pos < 0 || next[pos] >= n) return;
      const int32_t left = ids[pos], right = ids[next[pos]];
      const uint64_t key = (static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right);
      auto it = memo.find(key);
      if (it == memo.end()) it = memo.emplace(key, merged(left, right).value_or(-1)).first;
      if (it->second >= 0) queue.push({v_.scores[it->second], pos, left, right, it->second});
    };
    for (int32_t i = 0; i < n; ++i) {
      next[i] = i + 1;
      prev[i] = i - 1;
    }
    for (int32_t i = 0; i + 1 < n; ++i) push(i);
    while (!queue.empty()) {
      const Candidate c = queue.top();
      queue.pop();
      if (!alive[c.pos] || next[c.pos] >= n || ids[c.pos] != c.left || ids[next[c.pos]] != c.right)
        continue;  // stale
      const int32_t right = next[c.pos];
      ids[c.pos] = c.merged;
      alive[right] = false;
      next[c.pos] = next[right];
      if (next[right] < n) prev[next[right]] = c.pos;
      push(prev[c.pos]);
      push(c.pos);
    }
    std::vector<int32_t> out;
    out.reserve(ids.size());
    for (int32_t i = 0; i < n; ++i)
      if (alive[i]) out.push_back(ids[i]);
    ids = std::move(out);
  }

  Vocab v_;
  std::string label_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_llama2c_tokenizer(const SideFile& bin) {
  return std::make_unique<Llama2cTokenizer>(bin);
}

}  // namespace csa::tok
