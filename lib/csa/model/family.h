// The family registry: an architecture is data (STYLE.md §2). Each family is one small file in
// families/ that (1) sets ModelConfig flags from its config.json fields and (2) lists its tensors:
// Hugging Face name, stored shape, and where it lands in the decoder's canonical weights.
// Adding a fifth family = one file + one fixture (docs/architecture.md).
#pragma once

#include <string>
#include <vector>

#include "csa/core/json.h"
#include "csa/model/config.h"

namespace csa {

// The canonical parameters of the generic decoder (see weights.h for their shapes).
enum class Param {
  kTokEmb,
  kPosEmb,
  kFinalNormW,
  kFinalNormB,
  kLmHead,
  kLmHeadB,
  kNorm1W,
  kNorm1B,
  kNorm2W,
  kNorm2B,
  kQkvW,
  kQkvB,
  kOutW,
  kOutB,
  kUpW,
  kUpB,
  kDownW,
  kDownB,
};

// How a stored tensor becomes (rows of) its canonical parameter; applied once at load.
enum class Transform {
  kNone,
  kTranspose,  // GPT-2 Conv1D stores [in, out]; canonical is [out, in]
  kNeoxQkv,  // GPT-NeoX fused qkv rows are [head, {q,k,v}, dim]; canonical is [{q,k,v}, head, dim]
};

struct TensorSlot {
  std::string name;            // Hugging Face state-dict name
  std::vector<int64_t> shape;  // as stored
  Param param;
  int layer = -1;          // -1 for model-level parameters
  int64_t row_offset = 0;  // first canonical row written (q/k/v and gate/up concatenation)
  Transform transform = Transform::kNone;
  bool required = true;  // optional: may be absent (e.g. lm_head.weight of tied models)
  // Other names the same tensor goes by (e.g. transformers >= 5 names GPT-NeoX's embed_out
  // "lm_head" in memory, so traced archives carry that name).
  std::vector<std::string> aliases = {};
};

struct FamilySpec {
  std::string name;                      // gpt2, gpt_neox, qwen2, llama
  std::vector<std::string> model_types;  // config.json model_type values it handles
  std::string hf_class;                  // e.g. LlamaForCausalLM
  // Prefix that some checkpoints omit (e.g. "transformer." in the original GPT-2 files).
  std::string base_prefix;
  // Fills family-specific fields; the shared fields are parsed by parse_model_config.
  void (*parse)(const JsonReader& cfg, ModelConfig& out);
  // Every tensor of the model in the Hugging Face naming.
  std::vector<TensorSlot> (*tensors)(const ModelConfig& c);
  // Regexes of tensors that checkpoints may carry and the decoder does not use
  // (rotary inv_freq buffers, GPT-2 causal-mask buffers). Anything else unused is an error.
  std::vector<std::string> ignorable;
};

const std::vector<const FamilySpec*>& registered_families();
// UnsupportedError listing the supported model_type values if none matches.
const FamilySpec& family_for_model_type(const std::string& model_type, const std::string& origin);
const FamilySpec& family_by_name(const std::string& name);

// Registration from each family file (static initialisers are avoided: explicit list).
const FamilySpec& gpt2_family();
const FamilySpec& gpt_neox_family();
const FamilySpec& llama_family();
const FamilySpec& qwen2_family();

}  // namespace csa
