#include "csa/attention/rule.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

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
  std::string name = "page:" + std::to_string(s.page);
  if (s.spread != 1) {
    char buf[40];
    for (int digits = 6; digits <= 17; ++digits) {  // the shortest spelling that reads back
      std::snprintf(buf, sizeof buf, ":spread=%.*g", digits, s.spread);
      if (std::strtod(buf + 8, nullptr) == s.spread) break;
    }
    name += buf;
  }
  return name + (s.group ? ":group" : "") + (s.oracle ? ":oracle" : "") + (s.exact ? ":topk" : "");
}

PageSelection parse_selection(std::string_view text, const std::string& what) {
  auto bad = [&]() {
    return UsageError(what + " '" + std::string(text) +
                      "': use token or page:P[:spread=S][:group][:oracle][:topk] (P a page size in "
                      "1..65536, S in [0, 1], not with oracle)");
  };
  if (text == "token") return {};
  if (text.substr(0, 5) != "page:") throw bad();
  std::string_view rest = text.substr(5);
  PageSelection s;
  size_t colon = rest.find(':');
  std::string_view size = rest.substr(0, colon);
  if (size.empty() || size.size() > 5 ||
      size.find_first_not_of("0123456789") != std::string_view::npos)
    throw bad();
  s.page = std::stoll(std::string(size));
  if (s.page < 1 || s.page > 65536) throw bad();
  // The flags, each at most once, in the order of the spelling.
  int order = 0;
  bool spread_given = false;
  while (colon != std::string_view::npos) {
    rest = rest.substr(colon + 1);
    colon = rest.find(':');
    const std::string_view flag = rest.substr(0, colon);
    if (flag.substr(0, 7) == "spread=" && order < 1) {
      const std::string num(flag.substr(7));
      char* end = nullptr;
      const double v = num.empty() ? -1 : std::strtod(num.c_str(), &end);
      if (num.empty() || end != num.c_str() + num.size() || !(v >= 0 && v <= 1)) throw bad();
      s.spread = v;
      spread_given = true;
      order = 1;
    } else if (flag == "group" && order < 2) {
      s.group = true;
      order = 2;
    } else if (flag == "oracle" && order < 3) {
      s.oracle = true;
      order = 3;
    } else if (flag == "topk" && order < 4) {
      s.exact = true;
      order = 4;
    } else {
      throw bad();
    }
  }
  if (spread_given && s.oracle) throw bad();
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
