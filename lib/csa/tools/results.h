// Pieces every results JSON of the tools shares.
#pragma once

#include <cstddef>
#include <string>

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

// Markdown summaries of a results document for a CI job summary ($GITHUB_STEP_SUMMARY): a heading,
// the slice, protocol and tolerances, and one table row per pass — ppl, Δ ppl, reads, KV reads,
// worst per-position bucket, verdict — dense first, then the policy and the baselines (csa-eval)
// or the policy's and uniform top-k's chosen caps (csa-sweep); a closing line with the verdict.
std::string eval_summary_markdown(const Json& eval_results);
std::string sweep_summary_markdown(const Json& sweep_results);

}  // namespace csa
