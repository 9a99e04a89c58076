// A Hugging Face tokenizers pipeline with a BPE model (tokenizers/src/tokenizer/mod.rs,
// encode_single_sequence / decode), built from tokenizer.json or from GPT-2's vocab + merges.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "csa/tokenizer/added_vocabulary.h"
#include "csa/tokenizer/bpe.h"
#include "csa/tokenizer/pipeline.h"
#include "csa/tokenizer/tokenizer.h"

namespace csa::tok {

struct HfComponents {
  std::unique_ptr<Normalizer> normalizer;       // may be null
  std::unique_ptr<PreTokenizer> pre_tokenizer;  // may be null: the whole stretch is one word
  std::unique_ptr<BpeModel> model;
  AddedVocabulary added;
  std::unique_ptr<PostProcessor> post_processor;  // may be null
  std::unique_ptr<DecodeStage> decoder;           // may be null: tokens joined by spaces
  std::optional<int32_t> bos, eos;
  std::string description;
};

class HfTokenizer final : public Tokenizer {
 public:
  explicit HfTokenizer(HfComponents c) : c_(std::move(c)) {}

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& opts) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override;
  int64_t vocab_size() const override;
  std::optional<int32_t> bos_id() const override { return c_.bos; }
  std::optional<int32_t> eos_id() const override { return c_.eos; }
  std::string description() const override { return c_.description; }

  // The id of a token of the vocabulary or an added token.
  std::optional<int32_t> token_to_id(const std::string& token) const;

 private:
  HfComponents c_;
};

}  // namespace csa::tok
