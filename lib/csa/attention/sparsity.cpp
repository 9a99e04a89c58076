#include "csa/attention/sparsity.h"

#include <ATen/Parallel.h>

#include <limits>

#include "csa/attention/select.h"
#include "csa/core/error.h"

namespace csa {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

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

SparsitySpec SparsitySpec::dense() {
  SparsitySpec s;
  s.label = "dense";
  return s;
}

SparsitySpec SparsitySpec::top_k(std::vector<std::vector<int64_t>> budgets, std::string label) {
  SparsitySpec s;
  s.kind = SparsityKind::kTopK;
  s.k = std::move(budgets);
  s.label = std::move(label);
  return s;
}

SparsitySpec SparsitySpec::uniform_top_k(int64_t n_layer, int64_t n_head, int64_t k) {
  if (k < 1) throw UsageError("uniform top-k needs k >= 1, got " + std::to_string(k));
  return top_k(
      std::vector<std::vector<int64_t>>(static_cast<size_t>(n_layer),
                                        std::vector<int64_t>(static_cast<size_t>(n_head), k)),
      "uniform k=" + std::to_string(k));
}

SparsitySpec SparsitySpec::top_p(int64_t n_layer, int64_t n_head, double p) {
  if (!(p > 0 && p <= 1)) throw UsageError("top-p needs 0 < p <= 1, got " + std::to_string(p));
  SparsitySpec s;
  s.kind = SparsityKind::kTopP;
  s.p.assign(static_cast<size_t>(n_layer), std::vector<double>(static_cast<size_t>(n_head), p));
  char buf[64];
  std::snprintf(buf, sizeof buf, "top-p p=%g", p);
  s.label = buf;
  return s;
}

SparsitySpec SparsitySpec::local_window(int64_t window, int64_t sinks) {
  if (window < 1 || sinks < 0) throw UsageError("window:W needs W >= 1 and sinks >= 0");
  SparsitySpec s;
  s.kind = SparsityKind::kWindow;
  s.window = window;
  s.sinks = sinks;
  s.label = "window " + std::to_string(window) + " + sinks " + std::to_string(sinks);
  return s;
}

SparsitySpec SparsitySpec::strided(int64_t stride, int64_t window, int64_t sinks) {
  if (stride < 1 || window < 1 || sinks < 0)
    throw UsageError("strided:S needs S >= 1, window >= 1, sinks >= 0");
  SparsitySpec s;
  s.kind = SparsityKind::kStrided;
  s.stride = stride;
  s.window = window;
  s.sinks = sinks;
  s.label = "strided " + std::to_string(stride) + ", window " + std::to_string(window) +
            ", sinks " + std::to_string(sinks);
  return s;
}

SparsitySpec SparsitySpec::parse_baseline(const std::string& text, int64_t n_layer,
                                          int64_t n_head) {
  // key:value pairs separated by commas; the first key names the kind.
  std::vector<std::pair<std::string, std::string>> kv;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t colon = item.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == item.size())
      throw UsageError("--baseline '" + text +
                       "': expected key:value items, e.g. uniform:64, "
                       "topp:0.9, window:256,sinks:4, strided:64,window:64");
    kv.emplace_back(item.substr(0, colon), item.substr(colon + 1));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  auto number = [&](const std::string& v) {
    try {
      size_t used = 0;
      double d = std::stod(v, &used);
      if (used != v.size()) throw std::invalid_argument(v);
      return d;
    } catch (const std::exception&) {
      throw UsageError("--baseline '" + text + "': '" + v + "' is not a number");
    }
  };
  auto option = [&](const std::string& key, int64_t fallback) {
    for (size_t i = 1; i < kv.size(); ++i)
      if (kv[i].first == key) return static_cast<int64_t>(number(kv[i].second));
    return fallback;
  };
  for (size_t i = 1; i < kv.size(); ++i)
    if (kv[i].first != "sinks" && kv[i].first != "window")
      throw UsageError("--baseline '" + text + "': unknown option '" + kv[i].first + "'");
  const std::string& kind = kv[0].first;
  const double value = number(kv[0].second);
  if (kind == "uniform") return uniform_top_k(n_layer, n_head, static_cast<int64_t>(value));
  if (kind == "topp") return top_p(n_layer, n_head, value);
  if (kind == "window") return local_window(static_cast<int64_t>(value), option("sinks", 4));
  if (kind == "strided")
    return strided(static_cast<int64_t>(value), option("window", static_cast<int64_t>(value)),
                   option("sinks", 0));
  throw UsageError("--baseline '" + text + "': unknown kind '" + kind +
                   "' (uniform, topp, window, strided)");
}

std::string SparsitySpec::kind_name() const {
  switch (kind) {
    case SparsityKind::kDense:
      return "dense";
    case SparsityKind::kTopK:
      return "top_k";
    case SparsityKind::kTopP:
      return "top_p";
    case SparsityKind::kWindow:
      return "window";
    case SparsityKind::kStrided:
      return "strided";
  }
  return "?";
}

Json SparsitySpec::to_json() const {
  Json j;
  j["kind"] = kind_name();
  j["label"] = label;
  if (kind == SparsityKind::kTopK) j["budgets"] = k;
  if (kind == SparsityKind::kTopP) j["p"] = p;
  if (kind == SparsityKind::kWindow || kind == SparsityKind::kStrided) {
    j["window"] = window;
    j["sinks"] = sinks;
  }
  if (kind == SparsityKind::kStrided) j["stride"] = stride;
  return j;
}

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

SparseAttentionHook::SparseAttentionHook(SparsitySpec spec, int64_t n_layer, int64_t n_head,
                                         int64_t n_head_kv, int64_t max_context)
    : spec_(std::move(spec)),
      n_layer_(n_layer),
      n_head_(n_head),
      n_head_kv_(n_head_kv),
      max_context_(max_context) {
  auto check_dims = [&](size_t rows, const std::vector<size_t>& cols, const char* what) {
    if (rows != static_cast<size_t>(n_layer))
      throw InputError(std::string(what) + " has " + std::to_string(rows) + " layers, the model " +
                       std::to_string(n_layer));
    for (size_t c : cols)
      if (c != static_cast<size_t>(n_head))
        throw InputError(std::string(what) + " has " + std::to_string(c) +
                         " heads in a layer, the model " + std::to_string(n_head));
  };
  active_.assign(static_cast<size_t>(n_layer), false);
  if (spec_.kind == SparsityKind::kTopK) {
    std::vector<size_t> cols;
    for (const auto& r : spec_.k) cols.push_back(r.size());
    check_dims(spec_.k.size(), cols, "top-k budgets");
    for (int64_t l = 0; l < n_layer; ++l)
      for (int64_t h = 0; h < n_head; ++h) {
        int64_t k = spec_.k[static_cast<size_t>(l)][static_cast<size_t>(h)];
        if (k < 1)
          throw InputError("top-k budget of layer " + std::to_string(l) + " head " +
                           std::to_string(h) + " is " + std::to_string(k) + " (must be >= 1)");
        if (k < max_context) active_[static_cast<size_t>(l)] = true;
      }
  } else if (spec_.kind == SparsityKind::kTopP) {
    std::vector<size_t> cols;
    for (const auto& r : spec_.p) cols.push_back(r.size());
    check_dims(spec_.p.size(), cols, "top-p masses");
    for (int64_t l = 0; l < n_layer; ++l)
      for (double p : spec_.p[static_cast<size_t>(l)])
        if (p < 1.0) active_[static_cast<size_t>(l)] = true;
  } else if (spec_.kind == SparsityKind::kWindow || spec_.kind == SparsityKind::kStrided) {
    bool reads_all =
        spec_.kind == SparsityKind::kWindow && spec_.window + spec_.sinks >= max_context;
    active_.assign(static_cast<size_t>(n_layer), !reads_all);
  }
  tally_.init(n_layer, n_head, n_head_kv);
}

bool SparseAttentionHook::active(int layer) const {
  return layer >= 0 && layer < n_layer_ && active_[static_cast<size_t>(layer)];
}

void SparseAttentionHook::reset_tally() {
  pending_.clear();
  tally_.init(n_layer_, n_head_, n_head_kv_);
}

void SparseAttentionHook::count_pass(int64_t batch, int64_t length) {
  // Dense reads of `batch` sequences of `length` rows: sum_{i < length} (i + 1) per head.
  const double dense = static_cast<double>(batch) * static_cast<double>(length) *
                       static_cast<double>(length + 1) / 2.0;
  for (int64_t l = 0; l < n_layer_; ++l) {
    auto L = static_cast<size_t>(l);
    for (int64_t h = 0; h < n_head_; ++h) {
      tally_.q_dense[L][static_cast<size_t>(h)] += dense;
      if (!active_[L]) tally_.q_sparse[L][static_cast<size_t>(h)] += dense;
    }
    for (int64_t g = 0; g < n_head_kv_; ++g) {
      tally_.kv_dense[L][static_cast<size_t>(g)] += dense;
      if (!active_[L]) tally_.kv_sparse[L][static_cast<size_t>(g)] += dense;
    }
  }
}

void SparseAttentionHook::mask_scores(const ScoreBlock& where, at::Tensor& scores) {
  switch (spec_.kind) {
    case SparsityKind::kDense:
      return;
    case SparsityKind::kTopK:
      mask_top_k(where, scores);
      break;
    case SparsityKind::kTopP:
      mask_top_p(where, scores);
      break;
    case SparsityKind::kWindow:
    case SparsityKind::kStrided:
      mask_static(where, scores);
      break;
  }
  count_kept(where, scores);
}

RowRule SparseAttentionHook::row_rule(int layer) const {
  RowRule rule;
  if (!active(layer)) return rule;
  if (spec_.kind == SparsityKind::kTopK) {
    rule.kind = RowRule::Kind::kTopK;
    rule.k = &spec_.k[static_cast<size_t>(layer)];
  } else if (spec_.kind == SparsityKind::kTopP) {
    rule.kind = RowRule::Kind::kTopP;
    rule.p = &spec_.p[static_cast<size_t>(layer)];
  }
  return rule;  // window / strided patterns take the explicit path
}

void SparseAttentionHook::count_reads(int layer, const ReadsCount& reads) {
  auto L = static_cast<size_t>(layer);
  CSA_CHECK(reads.q.size() == static_cast<size_t>(n_head_) &&
                reads.kv.size() == static_cast<size_t>(n_head_kv_),
            "reads count shape");
  for (int64_t h = 0; h < n_head_; ++h)
    tally_.q_sparse[L][static_cast<size_t>(h)] += reads.q[static_cast<size_t>(h)];
  for (int64_t g = 0; g < n_head_kv_; ++g)
    tally_.kv_sparse[L][static_cast<size_t>(g)] += reads.kv[static_cast<size_t>(g)];
}

void SparseAttentionHook::mask_top_k(const ScoreBlock& where, at::Tensor& scores) {
  const int64_t B = scores.size(0), H = scores.size(1), Tq = scores.size(2), S = scores.size(3);
  const auto& budgets = spec_.k[static_cast<size_t>(where.layer)];
  if (scores.is_cpu()) {
    CSA_CHECK(scores.is_contiguous() && scores.scalar_type() == at::kFloat, "scores layout");
    float* base = scores.data_ptr<float>();
    at::parallel_for(0, B * H * Tq, 16, [&](int64_t begin, int64_t end) {
      std::vector<float> scratch;
      for (int64_t row = begin; row < end; ++row) {
        const int64_t h = (row / Tq) % H, r = row % Tq;
        const int64_t n = std::min(S, where.q_pos0 + r + 1);  // causal keys of this query
        const int64_t k = budgets[static_cast<size_t>(h)];
        if (k < n) keep_top_k(base + row * S, n, k, scratch);
      }
    });
    return;
  }
  // Device path: top-k indices at the largest budget, then each head keeps its first k_h ranks.
  int64_t kmax = 0;
  for (int64_t k : budgets) kmax = std::max(kmax, k);
  kmax = std::min(kmax, S);
  at::Tensor idx = std::get<1>(scores.topk(kmax, -1));  // [B, H, Tq, kmax]
  at::Tensor kh = at::tensor(budgets, at::kLong).to(scores.device()).view({1, H, 1, 1});
  at::Tensor rank_ok = at::arange(kmax, idx.options()).view({1, 1, 1, kmax}) < kh;
  at::Tensor keep = at::zeros(scores.sizes(), scores.options().dtype(at::kBool));
  keep.scatter_(-1, idx, rank_ok.expand_as(idx));
  scores.masked_fill_(keep.logical_not(), kNegInf);
}

void SparseAttentionHook::mask_top_p(const ScoreBlock& where, at::Tensor& scores) {
  const int64_t B = scores.size(0), H = scores.size(1), Tq = scores.size(2), S = scores.size(3);
  const auto& masses = spec_.p[static_cast<size_t>(where.layer)];
  at::Tensor probs = at::softmax(scores, -1).contiguous();  // [B, H, Tq, S]
  if (scores.is_cpu()) {
    const float* pb = probs.data_ptr<float>();
    float* sb = scores.data_ptr<float>();
    at::parallel_for(0, B * H * Tq, 16, [&](int64_t begin, int64_t end) {
      std::vector<float> scratch;
      for (int64_t row = begin; row < end; ++row) {
        const int64_t h = (row / Tq) % H, r = row % Tq;
        const int64_t n = std::min(S, where.q_pos0 + r + 1);
        const double p = masses[static_cast<size_t>(h)];
        if (p >= 1.0) continue;
        int64_t k = count_for_mass(pb + row * S, n, p, scratch);
        if (k < n) keep_top_k(sb + row * S, n, std::max<int64_t>(k, 1), scratch);
      }
    });
    return;
  }
  // Device path: sort, keep the smallest prefix reaching p (per head).
  auto [sorted, idx] = probs.sort(-1, /*descending=*/true);
  at::Tensor before = sorted.cumsum(-1) - sorted;  // mass strictly before each entry
  at::Tensor ph =
      at::tensor(masses, at::kDouble).to(scores.device()).to(at::kFloat).view({1, H, 1, 1});
  at::Tensor keep_sorted = before < ph;
  at::Tensor keep = at::zeros(scores.sizes(), scores.options().dtype(at::kBool));
  keep.scatter_(-1, idx, keep_sorted);
  scores.masked_fill_(keep.logical_not(), kNegInf);
}

void SparseAttentionHook::mask_static(const ScoreBlock& where, at::Tensor& scores) {
  const int64_t Tq = scores.size(2), S = scores.size(3);
  auto opts = scores.options().dtype(at::kLong);
  at::Tensor i = at::arange(where.q_pos0, where.q_pos0 + Tq, opts).unsqueeze(1);  // [Tq, 1]
  at::Tensor j = at::arange(S, opts).unsqueeze(0);                                // [1, S]
  at::Tensor keep = (i - j < spec_.window).logical_or(j < spec_.sinks);
  if (spec_.kind == SparsityKind::kStrided)
    keep = keep.logical_or(at::remainder(i - j, spec_.stride) == 0);
  scores.masked_fill_(keep.logical_not(), kNegInf);  // broadcasts over [B, H]
}

void SparseAttentionHook::count_kept(const ScoreBlock& where, const at::Tensor& scores) {
  const int64_t B = scores.size(0), H = scores.size(1), Tq = scores.size(2), S = scores.size(3);
  const int64_t G = H / n_head_kv_;
  at::Tensor kept = at::isfinite(scores);                  // [B, H, Tq, S]
  at::Tensor q = kept.sum({0, 2, 3}, false, at::kDouble);  // [H]
  at::Tensor kv = kept.view({B, n_head_kv_, G, Tq, S}).any(2).sum({0, 2, 3}, false, at::kDouble);
  pending_.push_back({where.layer, {q, kv}});
  if (scores.is_cpu() || pending_.size() >= 256) tally();  // bounded queue
}

const ReadsTally& SparseAttentionHook::tally() const {
  for (auto& [layer, counts] : pending_) {
    at::Tensor q = counts.first.cpu(), kv = counts.second.cpu();
    auto L = static_cast<size_t>(layer);
    const double* qp = q.data_ptr<double>();
    const double* kp = kv.data_ptr<double>();
    for (int64_t h = 0; h < n_head_; ++h) tally_.q_sparse[L][static_cast<size_t>(h)] += qp[h];
    for (int64_t g = 0; g < n_head_kv_; ++g) tally_.kv_sparse[L][static_cast<size_t>(g)] += kp[g];
  }
  pending_.clear();
  return tally_;
}

}  // namespace csa
