// config.json parser (lib/csa/model/config.h parse_model_config) on arbitrary bytes: JSON syntax
// errors and every semantic check must be typed errors. An accepted config must be usable: its
// summary, its derived sizes and its family's tensor list.
#include "csa/model/config.h"
#include "csa/model/family.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return csa::fuzz::guarded([&] {
    csa::Json j = csa::parse_json(csa::fuzz::as_view(data, size), "fuzz/config.json");
    csa::ModelConfig c = csa::parse_model_config(j, "fuzz/config.json");
    CSA_FUZZ_REQUIRE(c.n_head > 0 && c.n_head_kv > 0 && c.n_head % c.n_head_kv == 0, "heads");
    CSA_FUZZ_REQUIRE(c.group_size() >= 1 && c.qkv_rows() > 0, "derived sizes");
    CSA_FUZZ_REQUIRE(c.attn_scale > 0, "attention scale");
    (void)csa::dump_json(csa::config_summary(c));
    // The tensor list walks every layer: only for configs small enough to enumerate quickly.
    if (c.n_layer <= 64) {
      for (const auto& slot : csa::family_by_name(c.family).tensors(c))
        for (int64_t d : slot.shape) CSA_FUZZ_REQUIRE(d >= 0, "negative dim in " + slot.name);
    }
  });
}
