#include "csa/tools/results.h"

#include "csa/tools/tools.h"

namespace csa {

Json comparison_json(const Comparison& c, double tol, double pos_tol) {
  return {{"ppl", c.sparse_ppl},
          {"delta_ppl", c.delta},
          {"delta_rel", c.delta_rel},
          {"bucket_delta_rel", c.bucket_delta_rel},
          {"max_abs_bucket_delta_rel", c.max_abs_bucket_delta_rel},
          {"max_bucket_worsening_rel", c.max_bucket_worsening_rel},
          {"matches_dense", c.meets(tol, pos_tol)}};
}

Json results_header(const char* kind, const Model& model) {
  return {{"schema_version", kResultsSchemaVersion},
          {"kind", kind},
          {"model", model.identity.to_json(model.config)}};
}

size_t element_bytes(const Model& m) { return c10::elementSize(m.dtype); }

}  // namespace csa
