// The tool runs: csa-calibrate, csa-sweep, csa-eval and csa-generate as library calls (the apps
// only parse options). This layer sits above calib and eval: it loads models and corpora, wires
// calibration, allocation, sweeps and evaluation together, and writes the JSON documents.
#pragma once

#include <string>
#include <vector>

#include "csa/calib/policy.h"
#include "csa/corpus/corpus.h"
#include "csa/eval/perplexity.h"
#include "csa/eval/sweep.h"
#include "csa/model/generate.h"

namespace csa {

inline constexpr int kResultsSchemaVersion = 1;

// The allocation rule a tool asks for (csa-calibrate; csa-sweep --rule re-allocates a policy).
struct RuleOptions {
  std::string rule;  // "" : the tool's default (calibrate) / the policy's (sweep)
  std::string need_metric = "rel_err";
  bool unbanded = false;      // need-based: one budget per head instead of one per position band
  bool kv_aware = false;      // need-based, GQA: one budget per KV group, paid by the group's union
  double reads = 0;           // need-based: starting reads fraction (0: 0.1)
  int64_t k_max = 0;          // proportional / power: starting cap (0: from the statistics)
  int64_t floor = 4;          // proportional / power
  double alpha = 1.0;         // power
  bool per_kv_group = false;  // proportional / power
};
// The rule `o` names on top of `base` (the fields a need-based or a k_max rule does not use are
// left as they are). UsageError on bad values.
AllocationRule resolve_rule(const RuleOptions& o, AllocationRule base);

inline constexpr const char* kDefaultRule = "greedy";

// A rule written compactly (csa-sweep --candidate): RULE[:METRIC][+unbanded][+kv], e.g.
// "greedy:rel_err", "greedy:res_rel+kv", "power" (alpha from `base`), "equal_error:rel_err".
RuleOptions parse_candidate(const std::string& text, const RuleOptions& base);

struct CalibrateToolOptions {
  ModelArgs model;
  std::vector<std::string> corpora;  // one or more calibration texts
  std::vector<double> shares;        // token share of each (default: equal)
  CorpusOptions corpus_options;
  int64_t tokens = 10000;            // calibration tokens in all
  int64_t offset = 0;                // first token used of every corpus
  int64_t ctx = 0;                   // window length (0: the model's context)
  int64_t batch = 0;                 // windows per forward (0: automatic)
  std::string metric = "mass_keys";  // diffuseness statistic of the proportional / power rules
  double tau = 0.9;
  RuleOptions rule;
};

// Returns the policy (with run metadata for `command`).
Policy run_calibrate(const CalibrateToolOptions& options, const std::string& command);

struct SweepToolOptions {
  ModelArgs model;
  std::string policy;
  std::vector<std::string> corpora;  // one or more held-out texts: every one must match dense
  std::vector<double> shares;        // token share of each (default: equal)
  CorpusOptions corpus_options;
  int64_t offset = -1;     // -1: right after the calibration tokens when the corpus is the same
  int64_t tokens = 32768;  // sweep tokens in all
  EvalProtocol protocol;
  SweepOptions sweep;
  RuleOptions rule;                     // rule "" sweeps the policy's own rule
  std::vector<RuleOptions> candidates;  // more rules swept from the same measurements
  bool uniform_fallback = true;         // write uniform top-k when it reads fewer keys at matching
  double start = 0;                     // first level (0: the policy's scalar)
  double max_level = 0;                 // largest level (0: the context for caps, 1 for reads)
  bool uniform = true;                  // also find the best uniform top-k on the same slice
  bool allow_other_weights = false;
  std::string select;  // token | page:P[:spread=S][:group][:oracle][:topk]; "" : the policy's own
};

struct SweepOutputs {
  Json policy;   // the re-capped policy (null if no cap matched)
  Json results;  // dense pass, every probe, the choice, the uniform baseline
  bool matched = false;
};

SweepOutputs run_sweep(const SweepToolOptions& options, const std::string& command);

struct EvalToolOptions {
  ModelArgs model;
  std::string corpus;
  CorpusOptions corpus_options;
  std::vector<std::string> policies;   // optional, repeatable: each evaluated as a policy run
  std::vector<std::string> baselines;  // uniform:K, topp:P, window:W[,sinks:S], strided:S[,...]
  int64_t offset = 0;
  int64_t max_tokens = 0;  // 0: the whole corpus
  EvalProtocol protocol;
  double tolerance = 0.005;
  double position_tolerance = 0.01;
  double confidence = 0;  // one-sided level of the quality bound; 0: point estimates (eval/sweep.h)
  bool allow_other_weights = false;
  // token | page:P[:spread=S][:group][:oracle][:topk] for every top-k run (policies and uniform
  // baselines);
  // "" : each policy's own selection, token-granular baselines.
  std::string select;
};

struct EvalOutputs {
  Json results;
  bool policy_matches = true;  // every policy met dense-matching quality (true if none)
};

EvalOutputs run_eval(const EvalToolOptions& options, const std::string& command);

struct GenerateToolOptions {
  ModelArgs model;
  std::string prompt;  // text; empty: start from BOS
  std::string policy;  // optional: also generate with the policy, side by side
  GenerateOptions generate;
  bool allow_other_weights = false;
  std::string select;  // token | page:P[:spread=S][:group][:oracle][:topk]; "" : the policy's own
};

// {"prompt", "dense": {"text", "ids"}, "policy": {...}} and the run metadata.
Json run_generate(const GenerateToolOptions& options, const std::string& command);

}  // namespace csa
