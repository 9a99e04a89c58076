#include "csa/io/sentencepiece.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <mutex>

#include "csa/core/error.h"
#include "csa/core/file.h"

namespace csa {
namespace {

struct Api {
  void* (*load)(const char*, size_t, char*, size_t);
  void (*free_model)(void*);
  int64_t (*encode)(void*, const char*, size_t, int32_t*, int64_t, char*, size_t);
  char* (*decode)(void*, const int32_t*, size_t, size_t*, char*, size_t);
  void (*free_string)(char*);
  int32_t (*piece_size)(void*);
  int32_t (*bos)(void*);
  int32_t (*eos)(void*);
  int32_t (*unk)(void*);
  int32_t (*is_control)(void*, int32_t);
  const char* (*id_to_piece)(void*, int32_t, size_t*);
  std::string path;
};

std::string exe_dir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<size_t>(n));
  return p.substr(0, p.find_last_of('/'));
}

std::vector<std::string> candidates() {
  std::vector<std::string> c;
  if (const char* env = std::getenv("CSA_SPM_MODULE")) c.emplace_back(env);
  c.push_back(exe_dir() + "/libcsa_spm.so");  // beside the binary
#ifdef CSA_SPM_MODULE_INSTALL_SUBDIR
  c.push_back(exe_dir() + "/../" CSA_SPM_MODULE_INSTALL_SUBDIR "/libcsa_spm.so");  // installed
#endif
  c.push_back(exe_dir() + "/../lib/csa/libcsa_spm.so");  // cmake --install layout
#ifdef CSA_SPM_MODULE_BUILD_PATH
  c.emplace_back(CSA_SPM_MODULE_BUILD_PATH);  // the build tree
#endif
  return c;
}

const Api& api() {
  static Api a;
  static std::once_flag once;
  static std::string failure;
  std::call_once(once, [] {
    std::string tried;
    void* lib = nullptr;
    for (const auto& p : candidates()) {
      if (!file_exists(p)) {
        tried += "\n  " + p + " (absent)";
        continue;
      }
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CSA_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(CSA_ASAN)
      // ASan refuses RTLD_DEEPBIND, and a plain RTLD_LOCAL load lets libtorch's protobuf
      // interpose sentencepiece's (a crash in its first parse). A new link-map namespace isolates
      // the module and its libraries completely; the module is built without sanitizers for
      // this (lib/CMakeLists.txt), as nothing of the main namespace is visible from there.
      lib = dlmopen(LM_ID_NEWLM, p.c_str(), RTLD_NOW | RTLD_LOCAL);
#else
      lib = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
#endif
      if (lib != nullptr) {
        a.path = p;
        break;
      }
      tried += "\n  " + p + ": " + dlerror();
    }
    if (lib == nullptr) {
      failure = "cannot load csa's sentencepiece module (libcsa_spm.so); tried:" + tried +
                "\n  set CSA_SPM_MODULE to its path";
      return;
    }
    auto sym = [&](const char* name) {
      void* s = dlsym(lib, name);
      if (s == nullptr) failure = a.path + ": missing symbol " + name;
      return s;
    };
    a.load = reinterpret_cast<decltype(a.load)>(sym("csa_spm_load"));
    a.free_model = reinterpret_cast<decltype(a.free_model)>(sym("csa_spm_free"));
    a.encode = reinterpret_cast<decltype(a.encode)>(sym("csa_spm_encode"));
    a.decode = reinterpret_cast<decltype(a.decode)>(sym("csa_spm_decode"));
    a.free_string = reinterpret_cast<decltype(a.free_string)>(sym("csa_spm_free_string"));
    a.piece_size = reinterpret_cast<decltype(a.piece_size)>(sym("csa_spm_piece_size"));
    a.bos = reinterpret_cast<decltype(a.bos)>(sym("csa_spm_bos_id"));
    a.eos = reinterpret_cast<decltype(a.eos)>(sym("csa_spm_eos_id"));
    a.unk = reinterpret_cast<decltype(a.unk)>(sym("csa_spm_unk_id"));
    a.is_control = reinterpret_cast<decltype(a.is_control)>(sym("csa_spm_is_control"));
    a.id_to_piece = reinterpret_cast<decltype(a.id_to_piece)>(sym("csa_spm_id_to_piece"));
  });
  if (!failure.empty()) throw IoError(failure);
  return a;
}

}  // namespace

std::string SentencePieceModel::module_path() { return api().path; }

SentencePieceModel::SentencePieceModel(std::string_view model, const std::string& origin)
    : origin_(origin) {
  char err[512] = {0};
  handle_ = api().load(model.data(), model.size(), err, sizeof err);
  if (handle_ == nullptr) throw FormatError(origin + ": not a valid SentencePiece model: " + err);
}

SentencePieceModel::~SentencePieceModel() {
  if (handle_ != nullptr) api().free_model(handle_);
}

std::vector<int32_t> SentencePieceModel::encode(std::string_view text) const {
  char err[512] = {0};
  std::vector<int32_t> ids(text.size() + 8);
  int64_t n = api().encode(handle_, text.data(), text.size(), ids.data(),
                           static_cast<int64_t>(ids.size()), err, sizeof err);
  if (n < 0) throw InputError(origin_ + ": sentencepiece cannot encode the text: " + err);
  if (n > static_cast<int64_t>(ids.size())) {
    ids.resize(static_cast<size_t>(n));
    n = api().encode(handle_, text.data(), text.size(), ids.data(), n, err, sizeof err);
  }
  ids.resize(static_cast<size_t>(n));
  return ids;
}

std::string SentencePieceModel::decode(const std::vector<int32_t>& ids) const {
  char err[512] = {0};
  size_t len = 0;
  char* s = api().decode(handle_, ids.data(), ids.size(), &len, err, sizeof err);
  if (s == nullptr) throw InputError(origin_ + ": sentencepiece cannot decode the ids: " + err);
  std::string out(s, len);
  api().free_string(s);
  return out;
}

int32_t SentencePieceModel::piece_size() const { return api().piece_size(handle_); }
int32_t SentencePieceModel::bos_id() const { return api().bos(handle_); }
int32_t SentencePieceModel::eos_id() const { return api().eos(handle_); }
int32_t SentencePieceModel::unk_id() const { return api().unk(handle_); }
bool SentencePieceModel::is_control(int32_t id) const { return api().is_control(handle_, id) != 0; }
std::string SentencePieceModel::id_to_piece(int32_t id) const {
  size_t len = 0;
  const char* p = api().id_to_piece(handle_, id, &len);
  return std::string(p, len);
}

}  // namespace csa
