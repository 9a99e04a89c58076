// Pieces every results JSON of the tools shares.
#pragma once

#include <cstddef>

#include "csa/core/json.h"
#include "csa/eval/perplexity.h"
#include "csa/model/model.h"

namespace csa {

// {schema_version, kind, model}: the head of every results document.
Json results_header(const char* kind, const Model& model);

// A sparse pass compared with dense, with the verdict at the given tolerances.
Json comparison_json(const Comparison& c, double tolerance, double position_tolerance);

// Bytes of one K or V element at the model's compute dtype.
size_t element_bytes(const Model& m);

}  // namespace csa
