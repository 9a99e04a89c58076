// Policies across schema versions: a version 1 policy (fixed budgets from the proportional rule,
// no need curves; the committed fuzz seed was written by csa 0.1) still loads, applies and
// re-caps; need-based rules refuse it with a clear message; version 2 round-trips.
#include "csa/calib/policy.h"
#include "csa/core/error.h"
#include "support.h"

using namespace csa;

TEST_CASE("a schema version 1 policy still loads, re-caps and refuses need-based rules",
          "[golden]") {
  const std::string path = test::source_dir() + "/tests/fuzz/corpus/policy/stories260K.json";
  Json j = read_json_file(path);
  REQUIRE(j["schema_version"] == 1);
  Policy p = Policy::read(path);
  CHECK(p.rule.kind == AllocationKind::kProportional);
  CHECK(p.rule.k_max == j["k_max"].get<int64_t>());
  CHECK_FALSE(p.need.has_value());
  REQUIRE(p.fixed_budgets().size() == 5);
  for (size_t l = 0; l < 5; ++l)
    for (size_t h = 0; h < 8; ++h)
      CHECK(p.fixed_budgets()[l][h] == j["budgets"][l][h].get<int64_t>());
  // Re-capping from its statistics reproduces its own budgets at its own cap.
  CHECK(p.recapped(p.rule.k_max).fixed_budgets() == p.fixed_budgets());
  CHECK(p.sparsity().kind == SparsityKind::kTopK);
  AllocationRule greedy;
  greedy.kind = AllocationKind::kGreedy;
  greedy.reads = 0.1;
  CHECK_THROWS_WITH(p.with_rule(greedy, path), Catch::Contains("needs need curves"));
  // Written again, it is a version 2 policy with the same budgets.
  Policy back = Policy::from_json(p.to_json(), "v2");
  CHECK(back.to_json()["schema_version"] == 2);
  CHECK(back.fixed_budgets() == p.fixed_budgets());
}
