// A loaded model: normalized config, canonical weights on the compute device, identity and the
// side files (tokenizer) it came with.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>

#include "csa/core/json.h"
#include "csa/model/checkpoint.h"
#include "csa/model/config.h"
#include "csa/model/weights.h"

namespace csa {

struct LoadOptions {
  std::string config_path;  // --config: replaces / supplies config.json
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;  // compute dtype (float32 default)
};

// Who a model is: stored in every policy and result, checked when a policy is applied.
struct ModelIdentity {
  std::string name;  // directory / file stem or the archive manifest's source
  std::string path;
  std::string format;
  std::string weights_sha256;  // over the bound tensors as stored (names, dtypes, shapes, bytes)
  Json to_json(const ModelConfig& c) const;
};

struct Model {
  ModelConfig config;
  Weights weights;
  ModelIdentity identity;
  std::map<std::string, std::string> files;  // tokenizer and generation side files
  Json raw_config;                           // the Hugging Face config.json as read
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
};

Model load_model(const std::string& path, const LoadOptions& options = {});

// How every tool names its model: path plus --config, --device, --dtype.
struct ModelArgs {
  std::string path;
  std::string config;
  std::string device = "cpu";
  std::string dtype = "float32";
  Model load() const;  // parses device/dtype (UsageError / InputError) and loads
};

// Binds a checkpoint's tensors through the family's tensor list (the one visitor): every
// required tensor present with its exact shape, no unused tensor left over (except the family's
// ignorable buffers), no NaN/Inf. Errors name the file and the tensor.
Model build_model(Checkpoint&& ck, const LoadOptions& options = {});

// The tensors a model is made of, under their Hugging Face names and stored dtypes, in the
// family's order (what the converters write and the identity hash covers).
std::map<std::string, at::Tensor> source_tensors(const Checkpoint& ck, const ModelConfig& c);

}  // namespace csa
