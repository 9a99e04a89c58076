#include "csa/io/sentencepiece.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <mutex>

#include "csa/core/error.h"
#include "csa/core/file.h"
#include "csa/core/sanitizer.h"

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
#if CSA_ASAN
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

// The fields of the serialized ModelProto that decide whether a text may be encoded in parts
// (proto2 defaults where a field is absent); found = false if the bytes do not parse.
struct SpecFlags {
  bool found = false;
  bool identity = false;  // normalizer_spec.name "identity" and no precompiled charsmap
  bool add_dummy_prefix = true, escape_whitespaces = true, treat_whitespace_as_suffix = false;
};

// One protobuf field: number, wire type, and its varint value or length-delimited bytes.
bool next_field(std::string_view& in, uint32_t& field, uint32_t& wire, uint64_t& value,
                std::string_view& bytes) {
  const auto varint = [&](uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
      const auto b = static_cast<unsigned char>(in.front());
      in.remove_prefix(1);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  };
  uint64_t key = 0;
  if (!varint(key)) return false;
  field = static_cast<uint32_t>(key >> 3), wire = static_cast<uint32_t>(key & 7);
  switch (wire) {
    case 0:
      return varint(value);
    case 1:
    case 5: {
      const size_t n = wire == 1 ? 8 : 4;
      if (in.size() < n) return false;
      in.remove_prefix(n);
      return true;
    }
    case 2:
      if (!varint(value) || value > in.size()) return false;
      bytes = in.substr(0, static_cast<size_t>(value));
      in.remove_prefix(static_cast<size_t>(value));
      return true;
    default:
      return false;
  }
}

SpecFlags spec_flags(std::string_view model) {
  SpecFlags f;
  uint32_t field = 0, wire = 0;
  uint64_t value = 0;
  std::string_view bytes;
  bool normalizer = false;
  while (!model.empty()) {
    if (!next_field(model, field, wire, value, bytes)) return {};
    if (wire != 2) continue;
    if (field == 2) {  // trainer_spec: treat_whitespace_as_suffix = 24
      for (std::string_view t = bytes; !t.empty();) {
        if (!next_field(t, field, wire, value, bytes)) return {};
        if (field == 24 && wire == 0) f.treat_whitespace_as_suffix = value != 0;
      }
    } else if (field == 3) {  // normalizer_spec: name 1, precompiled_charsmap 2, flags 3 / 5
      normalizer = true;
      std::string name;
      bool charsmap = false;
      for (std::string_view t = bytes; !t.empty();) {
        if (!next_field(t, field, wire, value, bytes)) return {};
        if (field == 1 && wire == 2) name = std::string(bytes);
        if (field == 2 && wire == 2) charsmap = !bytes.empty();
        if (field == 3 && wire == 0) f.add_dummy_prefix = value != 0;
        if (field == 5 && wire == 0) f.escape_whitespaces = value != 0;
      }
      f.identity = name == "identity" && !charsmap;
    }
  }
  f.found = normalizer;
  return f;
}

constexpr size_t kEncodePart = 1 << 12;                  // bytes per part of a long text
constexpr std::string_view kSpaceMark = "\xe2\x96\x81";  // U+2581, SentencePiece's escaped space

}  // namespace

std::string SentencePieceModel::module_path() { return api().path; }

SentencePieceModel::SentencePieceModel(std::string_view model, const std::string& origin)
    : origin_(origin) {
  char err[512] = {0};
  handle_ = api().load(model.data(), model.size(), err, sizeof err);
  if (handle_ == nullptr) throw FormatError(origin + ": not a valid SentencePiece model: " + err);
  const SpecFlags f = spec_flags(model);
  if (!f.found || !f.identity || !f.escape_whitespaces || f.treat_whitespace_as_suffix) return;
  const std::string_view ws = kSpaceMark;
  for (int32_t id = 0, n = piece_size(); id < n; ++id) {
    const std::string p = id_to_piece(id);
    for (size_t at = p.find(ws, 1); at != std::string::npos; at = p.find(ws, at + 1))
      if (at < ws.size() || p.compare(at - ws.size(), ws.size(), ws) != 0) return;
  }
  split_at_spaces_ = true;
  dummy_prefix_ = f.add_dummy_prefix;
}

SentencePieceModel::~SentencePieceModel() {
  if (handle_ != nullptr) api().free_model(handle_);
}

std::vector<int32_t> SentencePieceModel::encode(std::string_view text) const {
  if (!split_at_spaces_ || text.size() <= kEncodePart) return encode_whole(text);
  std::vector<std::string_view> parts;
  for (size_t begin = 0; begin < text.size();) {
    size_t end = text.size(), next = end;
    // the first space at least kEncodePart on with a non-space on both sides, not after a
    // literal U+2581 (which pieces of U+2581 runs could join to the space's)
    for (size_t p = begin + kEncodePart; p + 1 < text.size(); ++p)
      if (text[p] == ' ' && text[p - 1] != ' ' && text[p + 1] != ' ' &&
          text.substr(p - kSpaceMark.size(), kSpaceMark.size()) != kSpaceMark) {
        end = p;
        next = dummy_prefix_ ? p + 1 : p;  // the dummy prefix stands for the space
        break;
      }
    parts.push_back(text.substr(begin, end - begin));
    begin = next;
  }
  // The parts are independent (split_at_spaces), so they are encoded on the CPU threads
  // (sentencepiece's Encode is const) and joined in order: the same ids on any thread count.
  std::vector<std::vector<int32_t>> ids_of(parts.size());
  at::parallel_for(0, static_cast<int64_t>(parts.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      ids_of[static_cast<size_t>(i)] = encode_whole(parts[static_cast<size_t>(i)]);
  });
  std::vector<int32_t> ids;
  for (const auto& part : ids_of) ids.insert(ids.end(), part.begin(), part.end());
  return ids;
}

std::vector<int32_t> SentencePieceModel::encode_whole(std::string_view text) const {
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
