// Helpers shared by the tests: paths, temporary directories, tensor comparison with max |diff|.
#pragma once

#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

namespace csa::test {

inline std::string source_dir() { return CSA_SOURCE_DIR; }
inline std::string binary_dir() { return CSA_BINARY_DIR; }
inline std::string fixtures_dir() { return source_dir() + "/tests/fixtures"; }
// ../shared beside the checkout, or $CSA_SHARED when set and not empty. The one definition: every
// test that reads the shared models and corpora goes through these two.
inline std::string shared_dir() {
  const char* env = std::getenv("CSA_SHARED");
  return env != nullptr && *env != '\0' ? env : source_dir() + "/../shared";
}
inline std::string shared_path(const std::string& rel) { return shared_dir() + "/" + rel; }

// A fresh temporary directory, removed with its content at scope exit.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_text(const std::string& path, const std::string& content);

// Largest absolute difference (float64) between two tensors of the same shape.
double max_abs_diff(const at::Tensor& a, const at::Tensor& b);

// Random queries or keys of `shape` (float32): standard normal, or with `ties` integers in
// {-1, 0, 1}, so that equal scores (hence equal probabilities) are common.
at::Tensor attention_input(at::IntArrayRef shape, bool ties);

}  // namespace csa::test

// Compares within `tol`, printing the max difference either way.
#define CHECK_TENSOR_CLOSE(a, b, tol)                                                       \
  do {                                                                                      \
    REQUIRE((a).sizes() == (b).sizes());                                                    \
    double csa_maxdiff_ = ::csa::test::max_abs_diff((a), (b));                              \
    INFO(#a " vs " #b ": max |diff| = " << csa_maxdiff_ << " (tolerance " << (tol) << ")"); \
    CHECK(csa_maxdiff_ <= (tol));                                                           \
  } while (0)
