// The pickle reader (lib/csa/io/pickle.h) on arbitrary programs. Storages are served as small
// zero tensors (a real archive maps them from its ZIP records; fuzz_torchscript covers that).
#include <ATen/ATen.h>

#include "csa/io/pickle.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  csa::StorageLoader load = [](const std::string& key, at::ScalarType dtype, int64_t numel) {
    if (numel > (1 << 16)) throw csa::FormatError("fuzz: storage '" + key + "' too large");
    return at::zeros({numel}, at::TensorOptions().dtype(dtype));
  };
  return csa::fuzz::guarded([&] {
    csa::PyRef root = csa::unpickle(csa::fuzz::as_view(data, size), "fuzz/data.pkl", load);
    CSA_FUZZ_REQUIRE(root != nullptr, "unpickle returned null");
  });
}
