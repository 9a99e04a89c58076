#include "csa/model/family.h"

#include "csa/core/error.h"

namespace csa {

const std::vector<const FamilySpec*>& registered_families() {
  static const std::vector<const FamilySpec*> kFamilies = {&gpt2_family(), &gpt_neox_family(),
                                                           &qwen2_family(), &llama_family()};
  return kFamilies;
}

const FamilySpec& family_for_model_type(const std::string& model_type, const std::string& origin) {
  std::string known;
  for (const FamilySpec* f : registered_families()) {
    for (const auto& t : f->model_types) {
      if (t == model_type) return *f;
      known += (known.empty() ? "" : ", ") + t;
    }
  }
  throw UnsupportedError(origin + ": model_type '" + model_type +
                         "' is not supported (supported: " + known + ")");
}

const FamilySpec& family_by_name(const std::string& name) {
  for (const FamilySpec* f : registered_families())
    if (f->name == name) return *f;
  throw UnsupportedError("unknown model family '" + name + "'");
}

}  // namespace csa
