#include "csa/tokenizer/hf_tokenizer.h"

#include <algorithm>
#include <unordered_map>

#include "csa/tokenizer/factories.h"

namespace csa::tok {
namespace {

// Pre-token -> ids for one encode call: corpora repeat a small set of words, so BPE runs once
// per distinct word. Words past kMaxCachedBytes are not kept (as HF's MAX_LENGTH).
class WordCache {
 public:
  void tokenize(const BpeModel& model, const std::string& word, std::vector<int32_t>& out) {
    auto it = index_.find(word);
    if (it != index_.end()) {
      out.insert(out.end(), ids_.begin() + it->second.first, ids_.begin() + it->second.second);
      return;
    }
    const size_t begin = out.size();
    model.tokenize(word, out);
    if (word.size() > kMaxCachedBytes) return;
    const auto first = static_cast<uint32_t>(ids_.size());
    ids_.insert(ids_.end(), out.begin() + static_cast<std::ptrdiff_t>(begin), out.end());
    index_.emplace(word, std::make_pair(first, static_cast<uint32_t>(ids_.size())));
  }

 private:
  static constexpr size_t kMaxCachedBytes = 256;
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>> index_;
  std::vector<int32_t> ids_;
};

}  // namespace

std::vector<int32_t> HfTokenizer::encode(std::string_view text, const EncodeOptions& opts) const {
  const std::string input = checked_text(text, opts, c_.description);
  std::vector<int32_t> ids;
  ids.reserve(input.size() / 3 + 8);
  WordCache cache;
  std::vector<Piece> pieces;
  for (TextSplit& split : c_.added.split(input, c_.normalizer.get())) {
    if (split.id) {
      ids.push_back(*split.id);
      continue;
    }
    pieces.clear();
    pieces.push_back(std::move(split.piece));
    if (c_.pre_tokenizer) c_.pre_tokenizer->pre_tokenize(pieces);
    for (const Piece& p : pieces) cache.tokenize(*c_.model, p.text, ids);
  }
  if (opts.add_special_tokens && c_.post_processor)
    ids = c_.post_processor->process(std::move(ids));
  return ids;
}

std::string HfTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  const int64_t n = vocab_size();
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    check_id(id, n, c_.description);
    const std::string* token = c_.added.id_to_token(id);
    if (token == nullptr) token = c_.model->id_to_token(id);
    if (token == nullptr) continue;  // a hole in a sparse vocabulary: HF skips it too
    if (skip_special_tokens && c_.added.is_special(*token)) continue;
    tokens.push_back(*token);
  }
  std::string text;
  if (!c_.decoder) {
    for (size_t i = 0; i < tokens.size(); ++i) text += (i ? " " : "") + tokens[i];
    return text;
  }
  c_.decoder->decode_chain(tokens);
  for (const std::string& t : tokens) text += t;
  return text;
}

int64_t HfTokenizer::vocab_size() const {
  return static_cast<int64_t>(std::max(c_.model->max_id(), c_.added.max_id())) + 1;
}

std::optional<int32_t> HfTokenizer::token_to_id(const std::string& token) const {
  if (auto id = c_.added.token_to_id(token)) return id;
  return c_.model->token_to_id(token);
}

}  // namespace csa::tok
