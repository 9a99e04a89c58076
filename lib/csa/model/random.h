// Random-weight models of any parsed config: a Checkpoint in memory holding every tensor of the
// family's tensor list (its Hugging Face names and stored shapes), bound by build_model like a
// real checkpoint, so shape benchmarks of real architectures (configs/) need no weights and still
// exercise the family's tensor list, transforms and checks.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

#include "csa/core/json.h"
#include "csa/model/checkpoint.h"
#include "csa/model/model.h"

namespace csa {

struct RandomWeightsOptions {
  uint64_t seed = 0;
  // Standard deviation of the matrices and embeddings; 0 = the config's initializer_range
  // (0.02 where it has none), as the transformers _init_weights draw them. Norm weights are 1,
  // biases 0 (also as _init_weights).
  double stddev = 0;
  at::ScalarType stored_dtype = at::kFloat;  // dtype of the checkpoint's tensors
};

// Every tensor the family lists for `config` (the optional ones left out: a tied lm_head), drawn
// from one CPU generator seeded with options.seed in the list's order: the same seed gives the
// same weights. The Checkpoint's path is `origin`, its format "random".
Checkpoint random_checkpoint(const Json& config, const std::string& origin,
                             const RandomWeightsOptions& options = {});

// build_model over random_checkpoint: the Model a checkpoint of those weights would load into.
// identity.name is "<origin's stem> (random, seed N)".
Model random_model(const Json& config, const std::string& origin,
                   const RandomWeightsOptions& weights = {}, const LoadOptions& load = {});

// Writes a random checkpoint as a Hugging Face directory: `dir`/config.json (the config as given)
// and `dir`/model.safetensors (the tensors in options.stored_dtype). Creates `dir` if needed.
// Returns {"dir", "tensors", "bytes", "parameters"}.
Json write_random_checkpoint(const Json& config, const std::string& origin, const std::string& dir,
                             const RandomWeightsOptions& options = {});

}  // namespace csa
