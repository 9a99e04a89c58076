// The stages of a Hugging Face tokenizer.json pipeline other than the model:
//   normalizer -> (added tokens split out) -> pre-tokenizer -> BPE model -> post-processor
//   ids -> tokens -> decoder -> text
// Each stage is parsed from its JSON object; an unknown "type" is an UnsupportedError naming it
// and the file. Semantics follow tokenizers/src/{normalizers,pre_tokenizers,processors,decoders}.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "csa/core/json.h"

namespace csa::tok {

// A piece of text travelling through the pipeline. `at_start`: the piece begins at offset 0 of
// the original input (Metaspace's prepend_scheme "first" looks at this).
struct Piece {
  std::string text;
  bool at_start = false;
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` by their sub-pieces; empty pieces are dropped.
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

// The special tokens a post-processor puts before and after a single sequence.
struct TemplateSpecials {
  std::vector<int32_t> before, after;
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Applied only when special tokens are requested (single sequence).
  virtual std::vector<int32_t> process(std::vector<int32_t> ids) const = 0;
  virtual TemplateSpecials specials() const = 0;
};

// A "decoder" stage of tokenizer.json (ByteLevel, Metaspace, ...): token strings back to text.
// Named DecodeStage so it is not confused with csa::Decoder, the model's forward pass.
class DecodeStage {
 public:
  virtual ~DecodeStage() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// `j` may be null (no stage): the factories then return nullptr. `origin` names the file and
// `field` the JSON path, for errors.
std::unique_ptr<Normalizer> make_normalizer(const Json& j, const std::string& origin,
                                            const std::string& field = "normalizer");
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, const std::string& origin,
                                                 const std::string& field = "pre_tokenizer");
std::unique_ptr<PostProcessor> make_post_processor(const Json& j, const std::string& origin,
                                                   const std::string& field = "post_processor");
std::unique_ptr<DecodeStage> make_decoder(const Json& j, const std::string& origin,
                                          const std::string& field = "decoder");

// GPT-2's pre-tokenizer: ByteLevel(add_prefix_space=false, use_regex=true).
std::unique_ptr<PreTokenizer> make_gpt2_pre_tokenizer();
std::unique_ptr<DecodeStage> make_byte_level_decoder();

}  // namespace csa::tok
