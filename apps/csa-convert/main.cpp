// csa-convert: any supported checkpoint -> a csa TorchScript archive (model.pt).
#include <spdlog/spdlog.h>

#include "csa/app/cli.h"
#include "csa/model/convert.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Convert a model to a csa TorchScript archive (model.pt).\n\n"
      "Reads a Hugging Face checkpoint directory (config.json + safetensors, single or sharded),\n"
      "a .safetensors file, a llama2.c .bin or another TorchScript archive; validates every\n"
      "tensor; writes the weights (HF names), config.json and tokenizer files into one archive.\n\n"
      "Examples:\n"
      "  csa-convert ../shared/models/llama-mini llama-mini.pt\n"
      "  csa-convert stories260K.bin stories.pt --dtype float32\n"
      "  csa-convert traced.pt model.pt --config config.json"};
  csa::ConvertOptions opts;
  csa::app::CommonOptions common;
  app.add_option("input", opts.input, "Model to convert")->required();
  app.add_option("output", opts.output, "Output archive (.pt)")->required();
  app.add_option("--config", opts.config_path, "config.json to use instead of the embedded one");
  app.add_option("--dtype", opts.dtype, "Stored dtype: keep, float32, bfloat16, float16")
      ->check(CLI::IsMember({"keep", "float32", "bfloat16", "float16"}));
  app.add_option("--name", opts.name, "Model name recorded in the archive manifest");
  csa::app::add_common_options(app, common);
  return csa::app::run_main(app, common, argc, argv, [&] {
    csa::Json manifest = csa::convert_to_torchscript(opts);
    spdlog::info("wrote {} ({} {}, dtype {})", opts.output, manifest["family"].get<std::string>(),
                 manifest["name"].get<std::string>(), manifest["dtype"].dump());
    return 0;
  });
}
