#include "csa/model/checkpoint.h"

#include <dirent.h>

#include <algorithm>
#include <set>

#include "csa/core/error.h"
#include "csa/core/file.h"
#include "csa/io/llama2c.h"
#include "csa/io/safetensors.h"
#include "csa/io/torchscript.h"
#include "csa/model/families/llama.h"

namespace csa {
namespace {

std::string join(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string dir_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

void merge_tensors(TensorMap& into, TensorMap&& from, const std::string& origin) {
  for (auto& [name, t] : from) {
    if (into.count(name))
      throw FormatError(origin + ": tensor '" + name + "' appears in more than one shard");
    into.emplace(name, std::move(t));
  }
}

// A sharded checkpoint: index.json maps tensor -> shard file; every shard is read, and the
// index must agree with the shards' contents.
TensorMap read_sharded(const std::string& dir, const std::string& index_name, bool safetensors) {
  const std::string index_path = join(dir, index_name);
  Json index = read_json_file(index_path);
  if (!index.contains("weight_map") || !index["weight_map"].is_object())
    throw FormatError(index_path + ": field 'weight_map' is missing or not an object");
  std::set<std::string> shards;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    if (!it.value().is_string())
      throw FormatError(index_path + ": weight_map['" + it.key() + "'] is not a file name");
    shards.insert(it.value().get<std::string>());
  }
  TensorMap all;
  for (const auto& shard : shards) {
    const std::string p = join(dir, shard);
    if (!file_exists(p)) throw IoError(p + ": shard named in " + index_path + " does not exist");
    if (safetensors) {
      merge_tensors(all, read_safetensors(p).tensors, p);
    } else {
      merge_tensors(all, read_torchscript(p).tensors, p);
    }
  }
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    if (!all.count(it.key()))
      throw FormatError(index_path + ": tensor '" + it.key() + "' is listed but shard '" +
                        it.value().get<std::string>() + "' does not contain it");
  }
  return all;
}

void read_side_files(const std::string& dir, std::map<std::string, std::string>& files) {
  for (const auto& name : side_file_names()) {
    const std::string p = join(dir, name);
    if (file_exists(p) && !is_directory(p)) files[name] = read_file(p);
  }
}

Checkpoint read_hf_directory(const std::string& dir) {
  Checkpoint ck;
  ck.format = "hf-directory";
  const std::string config_path = join(dir, "config.json");
  if (file_exists(config_path)) {
    ck.config = read_json_file(config_path);
    ck.config_origin = config_path;
  }
  if (file_exists(join(dir, "model.safetensors.index.json"))) {
    ck.tensors = read_sharded(dir, "model.safetensors.index.json", true);
  } else if (file_exists(join(dir, "model.safetensors"))) {
    ck.tensors = read_safetensors(join(dir, "model.safetensors")).tensors;
  } else if (file_exists(join(dir, "pytorch_model.bin.index.json"))) {
    ck.tensors = read_sharded(dir, "pytorch_model.bin.index.json", false);
    ck.format = "hf-directory (pytorch_model.bin)";
  } else if (file_exists(join(dir, "pytorch_model.bin"))) {
    ck.tensors = read_torchscript(join(dir, "pytorch_model.bin")).tensors;
    ck.format = "hf-directory (pytorch_model.bin)";
  } else {
    throw IoError(dir +
                  ": no weights found (expected model.safetensors, "
                  "model.safetensors.index.json with shards, or pytorch_model.bin)");
  }
  read_side_files(dir, ck.files);
  return ck;
}

bool starts_with_bytes(const std::string& path, const char* magic, size_t n) {
  auto f = MappedFile::open(path);
  return f->size() >= n && std::equal(magic, magic + n, f->view().begin());
}

}  // namespace

const std::vector<std::string>& side_file_names() {
  static const std::vector<std::string> kNames = {"tokenizer.json",
                                                  "tokenizer.model",
                                                  "tokenizer_config.json",
                                                  "special_tokens_map.json",
                                                  "generation_config.json",
                                                  "vocab.json",
                                                  "merges.txt",
                                                  "added_tokens.json",
                                                  "tok512.bin",
                                                  "tokenizer.bin"};
  return kNames;
}

Checkpoint read_checkpoint(const std::string& path, const std::string& config_override) {
  // Checkpoints are memory-mapped and read by offset: a model is a regular file or a directory.
  if (is_stdin_path(path))
    throw UsageError(
        "model '-': a model cannot be read from standard input; give its file or directory "
        "(only corpora and policies may be '-')");
  if (!file_exists(path)) throw IoError(path + ": no such file or directory");
  if (!is_directory(path) && !is_regular_file(path))
    throw UsageError(path +
                     ": a model must be a regular file or a directory, not a pipe, FIFO or "
                     "device (only corpora and policies may be streamed)");
  Checkpoint ck;
  if (is_directory(path)) {
    ck = read_hf_directory(path);
  } else if (starts_with_bytes(path, "PK\x03\x04", 4)) {
    TorchScriptArchive a = read_torchscript(path);
    ck.tensors = std::move(a.tensors);
    ck.format = a.extra.count("csa_manifest.json") ? "torchscript" : "torchscript (foreign)";
    for (auto& [name, content] : a.extra) {
      if (name == "config.json") {
        ck.config = parse_json(content, path + ": extra/config.json");
        ck.config_origin = path + ": extra/config.json";
      } else if (name == "csa_manifest.json") {
        ck.manifest = parse_json(content, path + ": extra/csa_manifest.json");
      } else {
        ck.files[name] = std::move(content);
      }
    }
    if (ck.manifest.is_object()) {
      int64_t v = ck.manifest.value("format_version", int64_t(0));
      if (v != 1)
        throw UnsupportedError(path + ": csa archive format_version " + std::to_string(v) +
                               " is not supported by this csa (supports 1): re-export the model");
    }
  } else if (path.size() > 12 && path.substr(path.size() - 12) == ".safetensors") {
    ck.format = "safetensors";
    ck.tensors = read_safetensors(path).tensors;
    const std::string beside = join(dir_of(path), "config.json");
    if (config_override.empty() && file_exists(beside)) {
      ck.config = read_json_file(beside);
      ck.config_origin = beside;
    }
    read_side_files(dir_of(path), ck.files);
  } else if (is_llama2c_checkpoint(path)) {
    Llama2cCheckpoint l = read_llama2c(path);
    ck.format = "llama2c";
    ck.tensors = llama2c_tensors(l, path);
    ck.config = std::move(l.config);
    ck.config_origin = path + " (llama2.c header)";
    read_side_files(dir_of(path), ck.files);
  } else {
    throw FormatError(path +
                      ": unrecognised model file (expected a Hugging Face directory, a "
                      "TorchScript .pt archive, a .safetensors file or a llama2.c .bin)");
  }
  ck.path = path;
  if (!config_override.empty()) {
    ck.config = read_json_file(config_override);
    ck.config_origin = config_override;
  }
  if (ck.config.is_null())
    throw InputError(path + ": has no config.json (" +
                     (ck.format.rfind("torchscript", 0) == 0
                          ? std::string("a traced archive not exported by csa")
                          : std::string("not embedded or beside it")) +
                     "): pass the model's Hugging Face config with --config config.json");
  return ck;
}

}  // namespace csa
