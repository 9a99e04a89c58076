#include "csa/model/model.h"

#include <regex>
#include <set>

#include "csa/core/error.h"
#include "csa/core/hash.h"
#include "csa/core/profile.h"
#include "csa/core/runtime.h"
#include "csa/model/family.h"

namespace csa {
namespace {

std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::string base_name(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  auto slash = p.find_last_of('/');
  std::string b = slash == std::string::npos ? p : p.substr(slash + 1);
  auto dot = b.find_last_of('.');
  if (dot != std::string::npos && dot > 0 && b.substr(dot) != ".d") b = b.substr(0, dot);
  return b;
}

// A slot's tensor under its name or an alias; some checkpoints also omit the base-model prefix
// ("transformer." in the original GPT-2 files).
const StoredTensor* find_tensor(const TensorMap& tensors, const TensorSlot& slot,
                                const std::string& prefix, std::string* found_name) {
  std::vector<std::string> names = {slot.name};
  names.insert(names.end(), slot.aliases.begin(), slot.aliases.end());
  for (const auto& name : names) {
    auto it = tensors.find(name);
    if (it == tensors.end() && !prefix.empty() && name.rfind(prefix, 0) == 0)
      it = tensors.find(name.substr(prefix.size()));
    if (it != tensors.end()) {
      *found_name = it->first;
      return &it->second;
    }
  }
  return nullptr;
}

at::Tensor apply_transform(const at::Tensor& t, Transform tr, const ModelConfig& c) {
  switch (tr) {
    case Transform::kNone:
      return t;
    case Transform::kTranspose:
      return t.t().contiguous();
    case Transform::kNeoxQkv: {
      // [H, 3, D, ...] -> [3, H, D, ...] (modeling_gpt_neox.py: view(..., -1, 3 * head_size))
      std::vector<int64_t> shape = {c.n_head, 3, c.head_dim};
      if (t.dim() == 2) shape.push_back(t.size(1));
      at::Tensor v = t.reshape(shape).transpose(0, 1).contiguous();
      return v.reshape(t.sizes());
    }
  }
  return t;
}

// A tensor of the checkpoint bound to a slot of the family's list, as stored.
struct BoundTensor {
  const TensorSlot* slot;
  const StoredTensor* stored;
  std::string name;  // as the checkpoint spells it (the slot's name, an alias, or unprefixed)
};

// Phase 1: walks the family's tensor list (the one visitor): finds each slot's tensor, checks its
// shape, dtype and values, and writes it (transformed) into its canonical parameter rows. Returns
// the tensors bound, in slot order.
std::vector<BoundTensor> bind_tensors(const Checkpoint& ck, const FamilySpec& family,
                                      const std::vector<TensorSlot>& slots, const ModelConfig& c,
                                      Weights& weights) {
  std::vector<BoundTensor> bound;
  weights.layers.resize(static_cast<size_t>(c.n_layer));
  bool lm_head_stored = false;
  for (const TensorSlot& slot : slots) {
    std::string found;
    const StoredTensor* st = find_tensor(ck.tensors, slot, family.base_prefix, &found);
    if (st == nullptr) {
      if (!slot.required) continue;
      throw FormatError(ck.path + ": tensor '" + slot.name + "' is missing (a " + family.hf_class +
                        " needs it with shape " + shape_str(slot.shape) + ")");
    }
    const at::Tensor& src = st->tensor;
    if (src.sizes() != at::IntArrayRef(slot.shape))
      throw FormatError(st->origin + ": has shape " + shape_str(src.sizes()) + " but the config (" +
                        ck.config_origin + ") implies " + shape_str(slot.shape));
    if (!at::isFloatingType(src.scalar_type()))
      throw FormatError(st->origin + ": has dtype " +
                        std::string(c10::toString(src.scalar_type())) +
                        ", expected a floating-point weight");
    at::Tensor value = src.to(at::kFloat);
    if (!at::isfinite(value).all().item<bool>())
      throw FormatError(st->origin + ": contains NaN or Inf values");
    if (slot.param == Param::kLmHead) lm_head_stored = true;
    bound.push_back({&slot, st, found});
    value = apply_transform(value, slot.transform, c);
    at::Tensor& target = weights.param(slot.param, slot.layer);
    const auto full = canonical_shape(c, slot.param);
    if (!target.defined()) target = at::full(full, std::nan(""), at::kFloat);
    CSA_CHECK(slot.row_offset + value.size(0) <= full[0], "slot rows exceed the parameter");
    target.narrow(0, slot.row_offset, value.size(0)).copy_(value);
  }
  if (c.tied_embeddings) {
    if (lm_head_stored && !weights.lm_head.equal(weights.tok_emb))
      throw FormatError(ck.path +
                        ": the config says tie_word_embeddings=true but the stored "
                        "lm_head weight differs from the token embedding");
    weights.lm_head = weights.tok_emb;
  }
  return bound;
}

// Phase 2: every tensor in the file is accounted for (bound, or ignorable for the family), and
// every canonical row was written (the slots cover the parameters exactly).
void check_complete(const Checkpoint& ck, const FamilySpec& family, const ModelConfig& c,
                    const std::vector<BoundTensor>& bound, Weights& weights) {
  std::set<std::string> used;
  for (const BoundTensor& b : bound) used.insert(b.name);
  std::vector<std::regex> ignorable;
  for (const auto& pattern : family.ignorable) ignorable.emplace_back(pattern);
  for (const auto& [name, st] : ck.tensors) {
    if (used.count(name)) continue;
    bool ignore = false;
    for (const auto& re : ignorable) ignore = ignore || std::regex_match(name, re);
    if (c.tied_embeddings && (name == "lm_head.weight" || name == "embed_out.weight"))
      ignore = true;
    if (!ignore)
      throw FormatError(st.origin + ": is not used by a " + family.hf_class +
                        " with this config (" + ck.config_origin +
                        "): wrong config or a different architecture?");
  }
  for (int i = -1; i < static_cast<int>(c.n_layer); ++i) {
    for (Param p : {Param::kTokEmb, Param::kQkvW, Param::kUpW}) {
      if ((p == Param::kTokEmb) != (i < 0)) continue;
      at::Tensor& t = weights.param(p, i);
      CSA_CHECK(t.defined() && !at::isnan(t).any().item<bool>(), "parameter rows left unwritten");
    }
  }
}

// Phase 3: sha256 over the bound tensors as stored, in slot order: each one's name, dtype, shape
// and bytes. A tied lm_head is the embedding again and is left out.
std::string hash_weights(const std::vector<BoundTensor>& bound, const ModelConfig& c) {
  Sha256 hash;
  for (const BoundTensor& b : bound) {
    if (b.slot->param == Param::kLmHead && c.tied_embeddings) continue;
    const at::Tensor& src = b.stored->tensor;
    at::Tensor contiguous = src.contiguous();
    hash.update(b.slot->name);
    hash.update(c10::toString(src.scalar_type()));
    hash.update(shape_str(src.sizes()));
    hash.update(contiguous.data_ptr(),
                static_cast<size_t>(contiguous.numel()) * contiguous.element_size());
  }
  return hash.hex_digest();
}

ModelIdentity model_identity(const Checkpoint& ck, const std::vector<BoundTensor>& bound,
                             const ModelConfig& c) {
  ModelIdentity id;
  id.path = ck.path;
  id.format = ck.format;
  id.name = ck.manifest.is_object() && ck.manifest.contains("name")
                ? ck.manifest["name"].get<std::string>()
                : base_name(ck.path);
  id.weights_sha256 = hash_weights(bound, c);
  return id;
}

// Phase 4: the canonical float32 CPU weights to the compute device and dtype.
void place_weights(Model& m, const LoadOptions& options) {
  m.device = options.device;
  m.dtype = options.dtype;
  if (!(options.device.is_cpu() && options.dtype == at::kFloat))
    weights_to(m.weights, options.device, options.dtype);
}

}  // namespace

Json ModelIdentity::to_json(const ModelConfig& c) const {
  Json j;
  j["name"] = name;
  j["family"] = c.family;
  j["format"] = format;
  j["n_layer"] = c.n_layer;
  j["n_head"] = c.n_head;
  j["n_head_kv"] = c.n_head_kv;
  j["head_dim"] = c.head_dim;
  j["n_ctx"] = c.n_ctx;
  j["vocab_size"] = c.vocab_size;
  j["weights_sha256"] = weights_sha256;
  return j;
}

std::map<std::string, at::Tensor> source_tensors(const Checkpoint& ck, const ModelConfig& c) {
  const FamilySpec& family = family_by_name(c.family);
  std::map<std::string, at::Tensor> out;
  for (const TensorSlot& slot : family.tensors(c)) {
    std::string found;
    const StoredTensor* st = find_tensor(ck.tensors, slot, family.base_prefix, &found);
    if (st == nullptr) continue;
    if (slot.param == Param::kLmHead && c.tied_embeddings) continue;  // tied: not stored
    out[slot.name] = st->tensor;
  }
  return out;
}

Model build_model(Checkpoint&& ck, const LoadOptions& options) {
  Model m;
  m.config = parse_model_config(ck.config, ck.config_origin);
  const ModelConfig& c = m.config;
  const FamilySpec& family = family_by_name(c.family);
  const std::vector<TensorSlot> slots = family.tensors(c);

  const std::vector<BoundTensor> bound = bind_tensors(ck, family, slots, c, m.weights);
  check_complete(ck, family, c, bound, m.weights);
  m.identity = model_identity(ck, bound, c);
  m.files = std::move(ck.files);
  m.raw_config = std::move(ck.config);
  place_weights(m, options);
  return m;
}

Model load_model(const std::string& path, const LoadOptions& options) {
  return build_model(read_checkpoint(path, options.config_path), options);
}

}  // namespace csa

namespace csa {

Model ModelArgs::load() const {
  CSA_PROFILE_SCOPE("load/model");  // read, check, bind (and the device's start on first use)
  LoadOptions o;
  o.config_path = config;
  o.device = parse_device(device);
  o.dtype = parse_dtype(dtype);
  return load_model(path, o);
}

}  // namespace csa
