#include "csa/attention/rule.h"

#include <algorithm>

#include "csa/core/error.h"

namespace csa {

std::string sparsity_kind_name(SparsityKind kind) {
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

SparsityKind parse_sparsity_kind(std::string_view name, const std::string& what) {
  if (name == "dense") return SparsityKind::kDense;
  if (name == "top_k" || name == "topk" || name == "top-k") return SparsityKind::kTopK;
  if (name == "top_p" || name == "topp" || name == "top-p") return SparsityKind::kTopP;
  if (name == "window") return SparsityKind::kWindow;
  if (name == "strided") return SparsityKind::kStrided;
  throw UsageError(what + " '" + std::string(name) +
                   "': use dense, top_k, top_p, window or strided");
}

std::string selection_name(const PageSelection& s) {
  if (!s.paged()) return "token";
  return "page:" + std::to_string(s.page) + (s.oracle ? ":oracle" : "") + (s.exact ? ":topk" : "");
}

PageSelection parse_selection(std::string_view text, const std::string& what) {
  auto bad = [&]() {
    return UsageError(what + " '" + std::string(text) +
                      "': use token, page:P, page:P:topk, page:P:oracle or page:P:oracle:topk (P "
                      "a page size in 1..65536)");
  };
  if (text == "token") return {};
  if (text.substr(0, 5) != "page:") throw bad();
  std::string_view rest = text.substr(5);
  PageSelection s;
  const size_t colon = rest.find(':');
  std::string_view size = rest.substr(0, colon);
  if (colon != std::string_view::npos) {
    std::string_view flags = rest.substr(colon + 1);
    if (flags == "topk")
      s.exact = true;
    else if (flags == "oracle")
      s.oracle = true;
    else if (flags == "oracle:topk")
      s.oracle = s.exact = true;
    else
      throw bad();
  }
  if (size.empty() || size.size() > 5 ||
      size.find_first_not_of("0123456789") != std::string_view::npos)
    throw bad();
  s.page = std::stoll(std::string(size));
  if (s.page < 1 || s.page > 65536) throw bad();
  return s;
}

BudgetSchedule BudgetSchedule::fixed(std::vector<int64_t> per_head) {
  BudgetSchedule s;
  for (int64_t k : per_head) s.k.push_back({k});
  return s;
}

int64_t BudgetSchedule::band(int64_t pos) const {
  // Few bands (one per octave of context at most): a linear scan beats a binary search.
  int64_t b = 0;
  while (b + 1 < n_bands() && band_start[static_cast<size_t>(b + 1)] <= pos) ++b;
  return b;
}

bool BudgetSchedule::reads_all(int64_t max_context) const {
  for (int64_t b = 0; b < n_bands(); ++b) {
    const int64_t lo = band_start[static_cast<size_t>(b)];
    if (lo >= max_context) break;
    const int64_t hi = b + 1 < n_bands()
                           ? std::min(band_start[static_cast<size_t>(b + 1)], max_context)
                           : max_context;
    for (const auto& row : k)
      if (row[static_cast<size_t>(b)] < hi) return false;  // position hi - 1 sees hi keys
  }
  return true;
}

int64_t LayerRule::fixed_keys(int64_t h, int64_t pos) const {
  switch (kind) {
    case SparsityKind::kDense:
      return pos + 1;
    case SparsityKind::kTopK:
      return std::min(top_k.budget(h, pos), pos + 1);
    case SparsityKind::kTopP:
      return -1;
    case SparsityKind::kWindow: {
      // The last `window` keys plus the sinks not among them.
      const int64_t recent = std::min(window, pos + 1);
      return recent + std::min(sinks, pos + 1 - recent);
    }
    case SparsityKind::kStrided: {
      int64_t n = 0;
      for (int64_t j = 0; j <= pos; ++j) n += pattern_keeps(pos, j);
      return n;
    }
  }
  return pos + 1;
}

bool LayerRule::reads_all(int64_t max_context) const {
  switch (kind) {
    case SparsityKind::kDense:
      return true;
    case SparsityKind::kTopK:
      return top_k.reads_all(max_context);
    case SparsityKind::kTopP:
      return std::all_of(p.begin(), p.end(), [](double x) { return x >= 1.0; });
    case SparsityKind::kWindow:
      return window + sinks >= max_context;
    case SparsityKind::kStrided:
      return stride == 1 || window >= max_context;
  }
  return false;
}

}  // namespace csa
