// Policy JSON reader (lib/csa/calib/policy.h Policy::from_json) on arbitrary bytes, gzipped ones
// inflated first as read_json_file does (core/compress.h; capped at 1 MiB here). An accepted
// policy must survive to_json -> from_json unchanged and re-capping.
#include <string>

#include "csa/calib/policy.h"
#include "csa/core/compress.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return csa::fuzz::guarded([&] {
    const std::string text = csa::inflate_if_gzip(std::string(csa::fuzz::as_view(data, size)),
                                                  size_t(1) << 20, "fuzz/policy.json.gz");
    csa::Json j = csa::parse_json(text, "fuzz/policy.json");
    csa::Policy p = csa::Policy::from_json(j, "fuzz/policy.json");
    const std::string once = csa::dump_json(p.to_json());
    csa::Policy again = csa::Policy::from_json(p.to_json(), "fuzz/policy.json (round trip)");
    CSA_FUZZ_REQUIRE(csa::dump_json(again.to_json()) == once, "to_json/from_json round trip");
    (void)p.mean_budget();
    (void)p.recapped(p.rule.k_max).sparsity();
  });
}
