// Reads accounting (METHOD.md "Reads"): a query at position i of a window reads i + 1 keys
// densely; under a rule it reads what the rule kept. Per (layer, query head) on the query side,
// per (layer, KV head) on the KV side, where a group's read is the union of the keys its query
// heads kept (what a kernel must fetch).
#pragma once

#include <cstdint>
#include <vector>

namespace csa {

// Reads of one pass, per layer and head: query side [L][H], KV side [L][Hkv], dense and sparse.
struct ReadsTally {
  std::vector<std::vector<double>> q_sparse, q_dense, kv_sparse, kv_dense;
  void init(int64_t n_layer, int64_t n_head, int64_t n_head_kv);
  void add(const ReadsTally& other);
  double q_sparse_total() const;
  double q_dense_total() const;
  double kv_sparse_total() const;
  double kv_dense_total() const;
  double q_fraction() const;   // sparse / dense, query side
  double kv_fraction() const;  // sparse / dense, KV side
};

// Dense reads of `batch` sequences of `length` query rows starting at position 0:
// batch * sum_{i < length} (i + 1).
double dense_reads(int64_t batch, int64_t length);

}  // namespace csa
