// SentencePiece tokenizer.model through the sentencepiece library (csa/io/sentencepiece.h loads
// it in its own module). Encoding prepends BOS when special tokens are requested, as Llama's
// template does; decoding is sentencepiece's own.
#include <algorithm>

#include "csa/io/sentencepiece.h"
#include "csa/tokenizer/factories.h"

namespace csa::tok {
namespace {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const SideFile& file)
      : model_(*file.content, file.label), label_(file.label) {}

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& opts) const override {
    std::vector<int32_t> ids = model_.encode(checked_text(text, opts, description()));
    if (opts.add_special_tokens && model_.bos_id() >= 0) ids.insert(ids.begin(), model_.bos_id());
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override {
    const int64_t n = vocab_size();
    for (int32_t id : ids) check_id(id, n, description());
    if (!skip_special_tokens) return model_.decode(ids);
    std::vector<int32_t> kept;
    std::copy_if(ids.begin(), ids.end(), std::back_inserter(kept),
                 [&](int32_t id) { return !model_.is_control(id) && id != model_.unk_id(); });
    return model_.decode(kept);
  }

  int64_t vocab_size() const override { return model_.piece_size(); }
  std::optional<int32_t> bos_id() const override { return optional_id(model_.bos_id()); }
  std::optional<int32_t> eos_id() const override { return optional_id(model_.eos_id()); }
  std::string description() const override {
    return "sentencepiece (" + label_ + ", " + std::to_string(vocab_size()) + " pieces)";
  }

 private:
  static std::optional<int32_t> optional_id(int32_t id) {
    return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
  }
  SentencePieceModel model_;
  std::string label_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_sentencepiece_tokenizer(const SideFile& model) {
  return std::make_unique<SentencePieceTokenizer>(model);
}

}  // namespace csa::tok
