// What the queries of one attention layer keep: the selection rule as data, the one place that
// defines every sparsity kind csa applies (METHOD.md "Apply"). The kernels (fused_cpu.h, and the
// explicit score path through mask.h on every device) read it; nothing else decides what a
// query reads.
//
//   dense    every causal key
//   top_k    per query head h and query position i: the k_h(i) highest-scoring causal keys,
//            k_h(i) from a budget schedule over position bands (a fixed k is one band); a query
//            reads min(k_h(i), i + 1) keys. Ties at the threshold: the more recent key (larger
//            index) is kept, so exactly that many keys are kept on every device.
//   top_p    per query head: the fewest keys, by score, whose softmax mass reaches p_h (ties as
//            top_k: the count is fixed by the mass, then the keys by the top-k rule).
//   window   StreamingLLM: the last `window` keys (i - j < window) and the first `sinks` keys.
//   strided  Sparse Transformer: window + sinks + every key j with (i - j) % stride == 0.
//
// Selection granularity (top_k only; PageSelection): token-granular as above, or page-granular,
// what a decoder over a paged KV cache can fetch (docs/decoding.md). Keys fall in pages of P
// positions, page m = [mP, mP + P). A query at position i with budget k < i + 1 keeps page 0
// (the sink), its own newest page i / P, and the ceil(k / P) earlier pages with the best scores
// (ties: the larger page index); every page when that is all of them. A page's score is its
// bound, the largest q·key any key of the page could give: sum over channels d of
// max(q_d · min_d, q_d · max_d), with the per-channel minimum and maximum of the page's keys
// (Quest's bound); or, for analysis only (`oracle`: it reads every key), the largest score of its
// keys, which no summary can beat. With `spread` s in [0, 1) the score moves from the bound
// toward the page's centre: sum over d of q_d · c_d + s · |q_d| · r_d, with the centre
// c = (min + max) / 2 and the half-range r = (max - min) / 2 (s = 1 is the bound, s = 0 the
// score of the centre). Summed over many channels the bound is dominated by the channels whose
// keys spread widest, whatever the query's typical score on the page; a smaller s ranks pages
// more by where their keys lie (measured in docs/decoding.md, "Quality"). So a query reads at least
// k keys and at most k + 2P - 1 plus its newest page's keys. With `exact`, the query then keeps the
// k highest-scoring keys of its pages (the top_k rule inside them).
//
// With `group`, the query heads that share a KV head (G = H / Hkv adjacent heads) choose one set
// of pages for the group, so that what the group fetches is what the budget says (per head, the
// union of G heads' choices is up to G times larger): a page's group score is the largest of its
// heads' scores, the count is the rule above with the largest of the heads' budgets at that
// position, and every head of the group reads the group's pages (so no head reads fewer keys than
// its own budget).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace csa {

enum class SparsityKind : uint8_t { kDense, kTopK, kTopP, kWindow, kStrided };

// The one spelling in JSON and on the command line: dense, top_k, top_p, window, strided.
std::string sparsity_kind_name(SparsityKind kind);
// Reads the spelling above and the older ones (topk, top-k, topp, top-p); UsageError otherwise,
// naming `what` (e.g. "--mode").
SparsityKind parse_sparsity_kind(std::string_view name, const std::string& what);

// Per-head top-k budgets that may follow the query's position. Band b covers positions
// [band_start[b], band_start[b + 1]) (the last band runs on to any position); head h's budget
// at position i is k[h][band(i)]. A fixed per-head k is the single band {0}.
struct BudgetSchedule {
  std::vector<int64_t> band_start = {0};  // [NB] starts at 0, strictly increasing
  std::vector<std::vector<int64_t>> k;    // [H][NB], every entry >= 1

  static BudgetSchedule fixed(std::vector<int64_t> per_head);
  int64_t n_head() const { return static_cast<int64_t>(k.size()); }
  int64_t n_bands() const { return static_cast<int64_t>(band_start.size()); }
  int64_t band(int64_t pos) const;
  int64_t budget(int64_t h, int64_t pos) const { return k[static_cast<size_t>(h)][band(pos)]; }
  // True when every head's budget covers every causal key at positions < max_context, i.e. the
  // schedule reads like dense there.
  bool reads_all(int64_t max_context) const;
  bool operator==(const BudgetSchedule& o) const { return band_start == o.band_start && k == o.k; }
};

// Token- or page-granular top_k selection (above). page 0: token-granular.
struct PageSelection {
  int64_t page = 0;
  bool exact = false;   // top_k within the kept pages
  bool oracle = false;  // pages scored by their best key's exact score (analysis only)
  double spread = 1;    // weight of the half-range in the summary score: 1 = Quest's bound
  bool group = false;   // one page set per KV group (above)
  bool paged() const { return page > 0; }
  bool operator==(const PageSelection& o) const {
    return page == o.page && exact == o.exact && oracle == o.oracle && spread == o.spread &&
           group == o.group;
  }
};
// The spelling on the command line and in JSON: "token", or "page:P" followed by any of
// ":spread=S" (S in [0, 1], written only when not 1; not with oracle), ":group", ":oracle",
// ":topk" in that order, e.g. "page:16", "page:16:spread=0.25:group", "page:32:oracle:topk".
std::string selection_name(const PageSelection& s);
// Reads that spelling; UsageError naming `what` otherwise (P in 1..65536).
PageSelection parse_selection(std::string_view text, const std::string& what);

struct LayerRule {
  SparsityKind kind = SparsityKind::kDense;
  BudgetSchedule top_k;   // kTopK
  PageSelection select;   // kTopK: token- or page-granular
  std::vector<double> p;  // kTopP: [H] masses in (0, 1]
  int64_t window = 0;     // kWindow / kStrided
  int64_t sinks = 0;      // kWindow / kStrided
  int64_t stride = 0;     // kStrided

  // Keys a query of head h at position pos keeps when that does not depend on the scores:
  // top_k min(budget, pos + 1), patterns their count, dense pos + 1; -1 for top_p.
  int64_t fixed_keys(int64_t h, int64_t pos) const;
  // Patterns: whether a query at position pos reads key j (j <= pos).
  bool pattern_keeps(int64_t pos, int64_t j) const {
    const int64_t d = pos - j;
    return d < window || j < sinks || (kind == SparsityKind::kStrided && d % stride == 0);
  }
  // True when no query at a position < max_context is restricted (the layer reads like dense).
  bool reads_all(int64_t max_context) const;
};

}  // namespace csa
