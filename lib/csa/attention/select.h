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
// Entries s[n..] are left alone. Requires 1 <= k < n. In place through the k-th largest value
// (no index list): every score above it, and the most recent ones equal to it.
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

// How select_row_in_place left a row: every key kept, the kept keys listed in idx, or the
// dropped keys set to -inf in s (idx empty).
enum class RowKeep : uint8_t { kAll, kListed, kMasked };
struct RowSelection {
  RowKeep keep;
  int64_t count;  // keys kept
};

// select_row's selection, with rows that keep many keys masked in place instead of listed: a
// score rule (top-k, top-p) whose row keeps k < n keys with k * mask_ratio >= n goes through
// keep_top_k (no index list of most of the row, and the row stays in key order for dense
// products); other rows as select_row.
RowSelection select_row_in_place(const LayerRule& rule, int64_t h, int64_t pos, float* s, int64_t n,
                                 int64_t mask_ratio, SelectScratch& scratch,
                                 std::vector<int32_t>& idx);

}  // namespace csa
