#include "support.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace csa::test {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "csa-test-XXXXXX").string();
  char* p = mkdtemp(tmpl.data());
  REQUIRE(p != nullptr);
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_text(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary);
  f << content;
  REQUIRE(f.good());
}

at::Tensor attention_input(at::IntArrayRef shape, bool ties) {
  return ties ? at::randint(-1, 2, shape).to(at::kFloat) : at::randn(shape);
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  if (a.numel() == 0) return 0;
  return (a.to(at::kDouble).cpu() - b.to(at::kDouble).cpu()).abs().max().item<double>();
}

}  // namespace csa::test
