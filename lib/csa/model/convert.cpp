#include "csa/model/convert.h"

#include "csa/core/error.h"
#include "csa/core/runtime.h"
#include "csa/io/torchscript.h"
#include "csa/model/model.h"

namespace csa {

Json convert_to_torchscript(const ConvertOptions& options) {
  Checkpoint ck = read_checkpoint(options.input, options.config_path);
  const ModelConfig config = parse_model_config(ck.config, ck.config_origin);
  std::map<std::string, at::Tensor> tensors = source_tensors(ck, config);
  if (options.dtype != "keep") {
    at::ScalarType dtype = parse_dtype(options.dtype);
    for (auto& [name, t] : tensors) t = t.to(dtype);
  }
  std::map<std::string, std::string> extra = ck.files;
  extra["config.json"] = dump_json(ck.config);
  std::string source = ck.path;
  Model model = build_model(std::move(ck));  // full validation: names, shapes, NaN/Inf

  std::set<std::string> dtypes;
  for (const auto& [name, t] : tensors) dtypes.insert(dtype_name(t.scalar_type()));
  Json manifest;
  manifest["format"] = "csa-torchscript";
  manifest["format_version"] = 1;
  manifest["name"] = options.name.empty() ? model.identity.name : options.name;
  manifest["source"] = source;
  manifest["dtype"] = dtypes.size() == 1 ? Json(*dtypes.begin()) : Json(dtypes);
  manifest["producer"] = "csa-convert " + csa_version() + " (" + csa_git_commit() + ")";
  manifest["torch"] = torch_version();
  manifest["family"] = config.family;
  extra["csa_manifest.json"] = dump_json(manifest);
  write_torchscript(options.output, tensors, extra);
  return manifest;
}

}  // namespace csa
