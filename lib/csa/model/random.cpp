#include "csa/model/random.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "csa/core/error.h"
#include "csa/core/file.h"
#include "csa/io/safetensors.h"
#include "csa/model/family.h"

namespace csa {
namespace {

bool is_norm_weight(Param p) {
  return p == Param::kNorm1W || p == Param::kNorm2W || p == Param::kFinalNormW;
}

bool is_bias(Param p) {
  return p == Param::kNorm1B || p == Param::kNorm2B || p == Param::kFinalNormB ||
         p == Param::kQkvB || p == Param::kOutB || p == Param::kUpB || p == Param::kDownB ||
         p == Param::kLmHeadB;
}

std::string stem(const std::string& origin) {
  std::string b = origin.substr(origin.find_last_of('/') + 1);
  const auto dot = b.find_last_of('.');
  return dot == std::string::npos || dot == 0 ? b : b.substr(0, dot);
}

}  // namespace

Checkpoint random_checkpoint(const Json& config, const std::string& origin,
                             const RandomWeightsOptions& o) {
  const ModelConfig c = parse_model_config(config, origin);
  const JsonReader r(config, origin);
  double stddev = o.stddev;
  if (stddev == 0) {
    stddev = r.get_double("initializer_range", 0.02);
    if (!(stddev > 0) || !std::isfinite(stddev))
      r.fail("initializer_range", "must be positive to draw random weights");
  }
  if (!(stddev > 0) || !std::isfinite(stddev))
    throw InputError("random weights: standard deviation " + std::to_string(stddev) +
                     " must be positive");
  if (!at::isFloatingType(o.stored_dtype))
    throw InputError("random weights: stored dtype " + std::string(c10::toString(o.stored_dtype)) +
                     " is not floating-point");

  Checkpoint ck;
  ck.path = origin;
  ck.format = "random";
  ck.config = config;
  ck.config_origin = origin;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  for (const TensorSlot& slot : family_by_name(c.family).tensors(c)) {
    if (!slot.required) continue;  // a tied lm_head: the embedding
    at::Tensor t;
    if (is_norm_weight(slot.param))
      t = at::ones(slot.shape, f32);
    else if (is_bias(slot.param))
      t = at::zeros(slot.shape, f32);
    else
      t = at::normal(0.0, stddev, slot.shape, gen, f32);
    if (o.stored_dtype != at::kFloat) t = t.to(o.stored_dtype);
    ck.tensors[slot.name] = StoredTensor{t, origin + " (random): " + slot.name};
  }
  return ck;
}

Model random_model(const Json& config, const std::string& origin,
                   const RandomWeightsOptions& weights, const LoadOptions& load) {
  Model m = build_model(random_checkpoint(config, origin, weights), load);
  m.identity.name = stem(origin) + " (random, seed " + std::to_string(weights.seed) + ")";
  return m;
}

Json write_random_checkpoint(const Json& config, const std::string& origin, const std::string& dir,
                             const RandomWeightsOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !is_directory(dir))
    throw IoError(dir + ": cannot create the directory (" + ec.message() + ")");
  std::map<std::string, at::Tensor> tensors;
  int64_t parameters = 0, bytes = 0;
  {
    Checkpoint ck = random_checkpoint(config, origin, options);
    for (auto& [name, st] : ck.tensors) {
      parameters += st.tensor.numel();
      bytes += st.tensor.numel() * static_cast<int64_t>(st.tensor.element_size());
      tensors[name] = std::move(st.tensor);
    }
  }
  write_safetensors(dir + "/model.safetensors", tensors);
  write_file_atomic(dir + "/config.json", dump_json(config));
  Json j;
  j["dir"] = dir;
  j["tensors"] = tensors.size();
  j["parameters"] = parameters;
  j["bytes"] = bytes;
  return j;
}

}  // namespace csa
