// The CPU implementation of rule.h's selection, row by row (linear time per row). The explicit
// score path and the fused CPU kernel both select through select_row, so they keep the same
// keys by construction; mask.cpp holds the CUDA implementation of the same rule, tested equal.
// Ties are broken toward the most recent key (the larger key index), so the number of keys kept
// is exactly the budget and tests can compare against a naive reference.
#pragma once

#include <cstdint>
#include <vector>

#include "csa/attention/rule.h"

namespace csa {

// Value of the k-th largest of x[0..n) (1 <= k <= n), -0 and +0 equal as they compare: a radix
// select over the floats' order keys (32 vectorised counting passes at most, no branch on the
// data). `scratch` is kept for callers; the keys live in a per-thread buffer.
float kth_largest(const float* x, int64_t n, int64_t k, std::vector<float>& scratch);

// The k largest of s[0..n) (ties: larger index first), as key indices in descending index
// order. Requires 1 <= k <= n. Long rows with small budgets first narrow the row to the scores
// above a sampled threshold (select.cpp says why the result is the same).
void top_k_indices(const float* s, int64_t n, int64_t k, std::vector<float>& scratch,
                   std::vector<int32_t>& idx);

// Sets every entry of s[0..n) not listed in `idx` to -inf.
void mask_except(float* s, int64_t n, const std::vector<int32_t>& idx, std::vector<float>& scratch);

// Keeps exactly the k largest of s[0..n) (ties: larger index first) and sets the rest to -inf.
// Entries s[n..] are left alone. Requires 1 <= k < n.
void keep_top_k(float* s, int64_t n, int64_t k, std::vector<float>& scratch);

// Smallest number of the largest values of p[0..n) whose sum reaches `mass` (p >= 0). Returns n
// if the whole row does not reach it. O(n) expected (a weighted quickselect).
int64_t count_for_mass(const float* p, int64_t n, double mass, std::vector<float>& scratch);

// The softmax of s[0..n) (entries may be -inf) into p[0..n): float exponentials, a double sum.
// The one softmax that top-p selection on the CPU sees.
void softmax_row(const float* s, float* p, int64_t n);

struct SelectScratch {
  std::vector<float> values, probs;
};

// The keys that a query of head h at position pos keeps under `rule`, given its causal scores
// s[0..n) (n = pos + 1 unless the block is a KV-prefix view; n >= 1). Returns true when the row
// keeps every key (idx is then left empty); otherwise fills idx with the kept key indices.
bool select_row(const LayerRule& rule, int64_t h, int64_t pos, const float* s, int64_t n,
                SelectScratch& scratch, std::vector<int32_t>& idx);

}  // namespace csa
