#include "csa/core/error.h"
#include "csa/core/file.h"
#include "csa/io/safetensors.h"
#include "support.h"

using namespace csa;

namespace {

std::string header_file(const std::string& header, size_t data_bytes) {
  std::string s(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) s[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s + header + std::string(data_bytes, '\0');
}

}  // namespace

TEST_CASE("safetensors round trip keeps names, dtypes, shapes and bytes", "[unit]") {
  test::TempDir dir;
  std::map<std::string, at::Tensor> tensors = {{"a.weight", at::randn({3, 5})},
                                               {"b", at::randn({7}).to(at::kBFloat16)},
                                               {"c", at::randn({2, 2, 2}).to(at::kHalf)},
                                               {"ids", at::arange(6, at::kLong)}};
  write_safetensors(dir.file("m.safetensors"), tensors);
  SafetensorsFile f = read_safetensors(dir.file("m.safetensors"));
  REQUIRE(f.tensors.size() == 4);
  for (const auto& [name, t] : tensors) {
    const at::Tensor& got = f.tensors.at(name).tensor;
    CHECK(got.scalar_type() == t.scalar_type());
    CHECK(got.equal(t));
  }
}

TEST_CASE("corrupt safetensors files are refused with the problem named", "[unit]") {
  test::TempDir dir;
  auto check = [&](const std::string& content, const std::string& needle) {
    test::write_text(dir.file("bad.safetensors"), content);
    CHECK_THROWS_WITH(read_safetensors(dir.file("bad.safetensors")),
                      Catch::Contains("bad.safetensors") && Catch::Contains(needle));
  };
  check("", "shorter than the 8-byte header");
  check(std::string("\xff\xff\x00\x00\x00\x00\x00\x00", 8) + "{}", "runs past the end");
  check(header_file("{\"a\": 1", 0), "not valid JSON");
  check(header_file(R"({"a": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}})", 4),
        "unknown or unsupported dtype 'F99'");
  check(header_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}})", 8),
        "run past the end of the data");
  check(header_file(R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8),
        "needs 12 bytes but data_offsets span 8");
  check(header_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                    12),
        "overlap");
  check(header_file(R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4),
        "negative dim");
  check(header_file(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", 8),
        "end before they begin");
  check(header_file(R"({"a": {"dtype": "F32"}})", 0), "needs dtype, shape and data_offsets");
  CHECK_THROWS_AS(read_safetensors(dir.file("absent.safetensors")), IoError);
}
