#include "csa/io/tensor_store.h"

namespace csa {

at::Tensor tensor_view(std::shared_ptr<const void> owner, const uint8_t* data, at::ScalarType dtype,
                       const std::vector<int64_t>& shape) {
  auto keep = std::move(owner);
  static uint8_t empty_dummy[16] = {};
  void* ptr = const_cast<uint8_t*>(data != nullptr ? data : empty_dummy);
  return at::from_blob(
      ptr, shape, [keep](void*) mutable { keep.reset(); }, at::TensorOptions().dtype(dtype));
}

size_t element_size(at::ScalarType t) { return c10::elementSize(t); }

}  // namespace csa
