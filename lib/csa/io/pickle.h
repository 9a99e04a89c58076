// A minimal, safe pickle reader for the object graph of a TorchScript archive's data.pkl.
// It never executes anything: GLOBALs become names, REDUCE/NEWOBJ of unknown callables become
// opaque objects, and only torch's tensor rebuild functions are interpreted.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace csa {

struct PyValue;
using PyRef = std::shared_ptr<PyValue>;

struct PyValue {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kStr,
    kBytes,
    kTuple,
    kList,
    kDict,
    kGlobal,
    kObject,
    kStorage,
    kTensor
  };
  Kind kind = Kind::kNone;
  int64_t i = 0;                              // kBool, kInt
  double f = 0;                               // kFloat
  std::string s;                              // kStr, kBytes, kGlobal ("module.name")
  std::vector<PyRef> items;                   // kTuple, kList; kObject: constructor args
  std::vector<std::pair<PyRef, PyRef>> dict;  // kDict
  PyRef cls, state;                           // kObject: class (kGlobal) and BUILD state
  at::ScalarType dtype = at::kFloat;          // kStorage
  std::string storage_key;                    // kStorage
  int64_t storage_numel = 0;                  // kStorage
  at::Tensor tensor;                          // kTensor (and kStorage once loaded)
};

// Loads the 1-D storage tensor named `key` (elements of `dtype`, `numel` of them).
using StorageLoader =
    std::function<at::Tensor(const std::string& key, at::ScalarType dtype, int64_t numel)>;

// Runs the pickle program; errors are FormatErrors naming `origin` and the byte offset.
PyRef unpickle(std::string_view data, const std::string& origin, const StorageLoader& load);

}  // namespace csa
