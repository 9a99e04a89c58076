// Per-row selection kernels over attention scores / probabilities (CPU, linear time per row).
// Ties are broken deterministically toward the most recent key (the larger key index), so the
// number of keys kept is exactly the budget and tests can compare against a naive reference.
#pragma once

#include <cstdint>
#include <vector>

namespace csa {

// Value of the k-th largest of x[0..n) (1 <= k <= n). `scratch` is reused between calls.
float kth_largest(const float* x, int64_t n, int64_t k, std::vector<float>& scratch);

// The k largest of s[0..n) (ties: larger index first), as key indices in descending order.
// Requires 1 <= k <= n.
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

}  // namespace csa
