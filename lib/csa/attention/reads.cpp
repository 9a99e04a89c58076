#include "csa/attention/reads.h"

namespace csa {
namespace {

std::vector<std::vector<double>> zeros(int64_t rows, int64_t cols) {
  return std::vector<std::vector<double>>(static_cast<size_t>(rows),
                                          std::vector<double>(static_cast<size_t>(cols), 0.0));
}

double total(const std::vector<std::vector<double>>& m) {
  double s = 0;
  for (const auto& r : m)
    for (double v : r) s += v;
  return s;
}

}  // namespace

void ReadsTally::init(int64_t n_layer, int64_t n_head, int64_t n_head_kv) {
  q_sparse = q_dense = zeros(n_layer, n_head);
  kv_sparse = kv_dense = zeros(n_layer, n_head_kv);
}

void ReadsTally::add(const ReadsTally& o) {
  auto acc = [](auto& a, const auto& b) {
    if (a.empty()) {
      a = b;
      return;
    }
    for (size_t i = 0; i < a.size(); ++i)
      for (size_t j = 0; j < a[i].size(); ++j) a[i][j] += b[i][j];
  };
  acc(q_sparse, o.q_sparse);
  acc(q_dense, o.q_dense);
  acc(kv_sparse, o.kv_sparse);
  acc(kv_dense, o.kv_dense);
}

double ReadsTally::q_sparse_total() const { return total(q_sparse); }
double ReadsTally::q_dense_total() const { return total(q_dense); }
double ReadsTally::kv_sparse_total() const { return total(kv_sparse); }
double ReadsTally::kv_dense_total() const { return total(kv_dense); }
double ReadsTally::q_fraction() const {
  double d = q_dense_total();
  return d > 0 ? q_sparse_total() / d : 1.0;
}
double ReadsTally::kv_fraction() const {
  double d = kv_dense_total();
  return d > 0 ? kv_sparse_total() / d : 1.0;
}

double dense_reads(int64_t batch, int64_t length) {
  return static_cast<double>(batch) * static_cast<double>(length) *
         static_cast<double>(length + 1) / 2.0;
}

}  // namespace csa
