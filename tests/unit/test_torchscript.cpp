#include <torch/script.h>

#include "csa/core/error.h"
#include "csa/core/file.h"
#include "csa/io/torchscript.h"
#include "support.h"

using namespace csa;

TEST_CASE("TorchScript archives round trip and load in torch::jit::load", "[unit]") {
  test::TempDir dir;
  std::map<std::string, at::Tensor> tensors = {
      {"model.layers.0.self_attn.q_proj.weight", at::randn({4, 3})},
      {"model.layers.10.mlp.up_proj.weight", at::randn({2, 3}).to(at::kBFloat16)},
      {"model.norm.weight", at::randn({3}).to(at::kHalf)},
      {"lm_head.weight", at::randn({5, 3})}};
  write_torchscript(dir.file("m.pt"), tensors,
                    {{"config.json", "{\"a\": 1}"}, {"notes.txt", "hi"}});

  TorchScriptArchive a = read_torchscript(dir.file("m.pt"));
  REQUIRE(a.tensors.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    INFO(name);
    REQUIRE(a.tensors.count(name) == 1);
    CHECK(a.tensors.at(name).tensor.scalar_type() == t.scalar_type());
    CHECK(a.tensors.at(name).tensor.equal(t));
  }
  CHECK(a.extra.at("config.json") == "{\"a\": 1}");
  CHECK(a.extra.at("notes.txt") == "hi");

  // The same archive through libtorch's own loader: identical names and values.
  torch::jit::ExtraFilesMap extra{{"config.json", ""}};
  torch::jit::Module m = torch::jit::load(dir.file("m.pt"), c10::nullopt, extra);
  CHECK(extra["config.json"] == "{\"a\": 1}");
  size_t n = 0;
  for (const auto& p : m.named_parameters()) {
    INFO(p.name);
    REQUIRE(tensors.count(p.name) == 1);
    CHECK(p.value.equal(tensors.at(p.name)));
    ++n;
  }
  CHECK(n == tensors.size());
}

TEST_CASE("truncated and foreign archives are refused", "[unit]") {
  test::TempDir dir;
  write_torchscript(dir.file("m.pt"), {{"w", at::randn({64, 64})}}, {});
  std::string bytes = read_file(dir.file("m.pt"));
  for (size_t keep : {bytes.size() / 2, bytes.size() - 30, size_t(100)}) {
    INFO("kept " << keep << " of " << bytes.size() << " bytes");
    test::write_text(dir.file("cut.pt"), bytes.substr(0, keep));
    CHECK_THROWS_WITH(read_torchscript(dir.file("cut.pt")),
                      Catch::Contains("cut.pt") && Catch::Contains("truncated"));
  }
  test::write_text(dir.file("junk.pt"), std::string(4096, 'x'));
  CHECK_THROWS_WITH(read_torchscript(dir.file("junk.pt")), Catch::Contains("not a ZIP"));
  test::write_text(dir.file("empty.pt"), "");
  CHECK_THROWS_AS(read_torchscript(dir.file("empty.pt")), FormatError);
}
