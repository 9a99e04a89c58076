#include "csa/io/torchscript.h"

#include <torch/script.h>

#include <functional>
#include <sstream>

#include "csa/core/error.h"
#include "csa/io/pickle.h"
#include "csa/io/zip.h"

namespace csa {
namespace {

// Depth-first walk of module objects: every tensor attribute becomes "<path>.<attr>".
// A module shared under several names is walked once per name, so `budget` bounds the total
// work (a pickle can share objects so that the number of paths doubles at every level).
void collect(const PyRef& obj, const std::string& prefix, TensorMap& out, const std::string& origin,
             int depth, int64_t& budget) {
  if (depth > 64) throw FormatError(origin + ": module tree deeper than 64 levels");
  // A module object's attributes live in its BUILD state; torch.save'd state dicts are dicts.
  const PyValue* attrs = nullptr;
  if (obj && obj->kind == PyValue::Kind::kDict) attrs = obj.get();
  if (obj && obj->kind == PyValue::Kind::kObject && obj->state &&
      obj->state->kind == PyValue::Kind::kDict)
    attrs = obj->state.get();
  if (attrs == nullptr) return;
  for (const auto& [key, value] : attrs->dict) {
    if (--budget < 0)
      throw FormatError(origin + ": module tree has too many attributes (shared submodules?)");
    if (key->kind != PyValue::Kind::kStr) continue;
    const std::string name = prefix.empty() ? key->s : prefix + "." + key->s;
    if (value->kind == PyValue::Kind::kTensor) {
      out[name] = StoredTensor{value->tensor, origin + ": tensor '" + name + "'"};
    } else if (value->kind == PyValue::Kind::kObject || value->kind == PyValue::Kind::kDict) {
      collect(value, name, out, origin, depth + 1, budget);
    }
  }
}

}  // namespace

TorchScriptArchive read_torchscript(const std::string& path) {
  return read_torchscript(MappedFile::open(path));
}

TorchScriptArchive read_torchscript(std::shared_ptr<const MappedFile> mapped) {
  ZipArchive zip = ZipArchive::open(std::move(mapped));
  const std::string& path = zip.path();
  TorchScriptArchive out;
  const ZipArchive::Entry* pkl = nullptr;
  for (const auto& e : zip.entries()) {
    auto slash = e.name.find('/');
    if (slash != std::string::npos && e.name.substr(slash) == "/data.pkl") {
      pkl = &e;
      out.root = e.name.substr(0, slash);
      break;
    }
  }
  if (pkl == nullptr)
    throw FormatError(path + ": a ZIP file but not a TorchScript archive (no <root>/data.pkl)");
  const std::string prefix = out.root + "/";
  auto file = zip.file();
  StorageLoader load = [&](const std::string& key, at::ScalarType dtype, int64_t numel) {
    const ZipArchive::Entry* e = zip.find(prefix + "data/" + key);
    if (e == nullptr)
      throw FormatError(path + ": storage record '" + prefix + "data/" + key +
                        "' is missing (truncated or corrupt archive)");
    // numel comes from data.pkl: compare in elements, numel x element size may wrap.
    if (numel < 0 || static_cast<uint64_t>(numel) > e->size / element_size(dtype))
      throw FormatError(path + ": storage record '" + e->name + "' has " + std::to_string(e->size) +
                        " bytes, its tensor needs " + std::to_string(numel) + " x " +
                        std::to_string(element_size(dtype)));
    return tensor_view(file, zip.stored_data(*e), dtype, {numel});
  };
  PyRef root = unpickle(zip.read(*pkl), path + ": " + pkl->name, load);
  int64_t budget = int64_t(1) << 20;  // attributes visited (a real model has thousands)
  collect(root, "", out.tensors, path, 0, budget);
  for (const auto& e : zip.entries()) {
    if (e.name.rfind(prefix + "extra/", 0) == 0 && e.name.size() > prefix.size() + 6)
      out.extra[e.name.substr(prefix.size() + 6)] = zip.read(e);
  }
  return out;
}

void write_torchscript(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& extra) {
  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  int class_counter = 0;
  auto new_module = [&]() {
    return torch::jit::Module(
        c10::QualifiedName("__torch__.csa_export.Module" + std::to_string(class_counter++)), cu);
  };
  // Build the module tree bottom-up: the module at each dotted prefix, leaf tensors as parameters.
  struct Node {
    std::map<std::string, Node> children;
    std::map<std::string, at::Tensor> params;
  };
  Node tree;
  for (const auto& [name, t] : tensors) {
    Node* node = &tree;
    size_t start = 0;
    while (true) {
      size_t dot = name.find('.', start);
      if (dot == std::string::npos) {
        node->params[name.substr(start)] = t.contiguous().cpu();
        break;
      }
      node = &node->children[name.substr(start, dot - start)];
      start = dot + 1;
    }
  }
  std::function<torch::jit::Module(const Node&)> build = [&](const Node& n) {
    torch::jit::Module m = new_module();
    for (const auto& [child_name, child] : n.children) {
      if (n.params.count(child_name))
        throw InputError(path + ": tensor name '" + child_name + "' is both a module and a tensor");
      m.register_module(child_name, build(child));
    }
    for (const auto& [pname, t] : n.params) m.register_parameter(pname, t, /*is_buffer=*/false);
    return m;
  };
  torch::jit::Module root = build(tree);
  root.define(
      "def forward(self, input_ids: Tensor) -> Tensor:\n"
      "    # csa archives carry weights only; csa's native decoder runs the model.\n"
      "    return input_ids\n");
  torch::jit::ExtraFilesMap files(extra.begin(), extra.end());
  // Saved through a stream so the archive's root folder is "archive" whatever the file is called
  // (torch names it after the file otherwise, and we write to a temporary name first).
  std::ostringstream buffer;
  try {
    root.save(buffer, files);
  } catch (const c10::Error& e) {
    throw IoError(path + ": cannot write the TorchScript archive: " + e.what_without_backtrace());
  }
  write_file_atomic(path, buffer.str());
}

}  // namespace csa
