// safetensors header parser (lib/csa/io/safetensors.h) on arbitrary file images. On success every
// tensor must be a view that lies inside the file's data section.
#include <ATen/ATen.h>

#include "csa/io/safetensors.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return csa::fuzz::guarded([&] {
    auto file = csa::MappedFile::from_bytes("fuzz.safetensors", csa::fuzz::as_view(data, size));
    csa::SafetensorsFile st = csa::parse_safetensors(file);
    const uint8_t* begin = file->data();
    const uint8_t* end = begin + file->size();
    for (const auto& [name, stored] : st.tensors) {
      const at::Tensor& t = stored.tensor;
      const size_t nbytes = static_cast<size_t>(t.numel()) * t.element_size();
      if (nbytes == 0) continue;
      const auto* p = static_cast<const uint8_t*>(t.data_ptr());
      CSA_FUZZ_REQUIRE(p >= begin + 8 && p + nbytes <= end, "tensor '" + name + "' outside file");
    }
  });
}
