// model.pt archives: the ZIP reader (lib/csa/io/zip.h), the pickle reader and the tensor walk of
// lib/csa/io/torchscript.h, on arbitrary file images. Every entry of an accepted ZIP must read
// (or fail typed), and every tensor of an accepted archive must lie inside the file.
#include <ATen/ATen.h>

#include "csa/io/torchscript.h"
#include "csa/io/zip.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = csa::MappedFile::from_bytes("fuzz/model.pt", csa::fuzz::as_view(data, size));
  csa::fuzz::guarded([&] {
    csa::ZipArchive zip = csa::ZipArchive::open(file);
    for (const auto& e : zip.entries()) {
      CSA_FUZZ_REQUIRE(e.data_offset <= size && e.compressed_size <= size - e.data_offset,
                       "entry '" + e.name + "' outside the file");
      csa::fuzz::guarded([&] { (void)zip.read(e); });
    }
  });
  return csa::fuzz::guarded([&] {
    csa::TorchScriptArchive ts = csa::read_torchscript(file);
    const uint8_t* begin = file->data();
    const uint8_t* end = begin + file->size();
    for (const auto& [name, stored] : ts.tensors) {
      const at::Storage& s = stored.tensor.storage();
      if (s.nbytes() == 0) continue;
      const auto* p = static_cast<const uint8_t*>(s.data());
      CSA_FUZZ_REQUIRE(p >= begin && p + s.nbytes() <= end, "storage of '" + name + "' outside");
      // The view itself must stay inside its storage.
      __int128 last = stored.tensor.storage_offset();
      bool empty = false;
      for (int64_t d = 0; d < stored.tensor.dim(); ++d) {
        if (stored.tensor.size(d) == 0)
          empty = true;
        else
          last += static_cast<__int128>(stored.tensor.size(d) - 1) * stored.tensor.stride(d);
      }
      if (!empty)
        CSA_FUZZ_REQUIRE((last + 1) * static_cast<__int128>(stored.tensor.element_size()) <=
                             static_cast<__int128>(s.nbytes()),
                         "view of '" + name + "' outside its storage");
    }
  });
}
