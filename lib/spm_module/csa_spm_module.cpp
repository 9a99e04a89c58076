// A tiny C interface over the sentencepiece library, built as its own shared module and loaded
// by csa with dlopen(RTLD_LOCAL | RTLD_DEEPBIND) (lib/csa/io/sentencepiece.cpp).
//
// Why: Debian's libsentencepiece.so.0 carries its own copy of protobuf-lite and exports those
// symbols; libtorch links the system libprotobuf.so.32. Linked into one process the two copies
// interpose each other and the process crashes in a static initializer before main(). Loaded
// locally and deep-bound, sentencepiece keeps its protobuf to itself.
#include <sentencepiece_processor.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

void set_error(char* err, size_t len, const std::string& msg) {
  if (err == nullptr || len == 0) return;
  std::strncpy(err, msg.c_str(), len - 1);
  err[len - 1] = '\0';
}

sentencepiece::SentencePieceProcessor* sp(void* h) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(h);
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int csa_spm_abi_version() { return 1; }

__attribute__((visibility("default"))) void* csa_spm_load(const char* data, size_t size, char* err,
                                                          size_t err_len) {
  auto* p = new sentencepiece::SentencePieceProcessor();
  auto status = p->LoadFromSerializedProto(std::string(data, size));
  if (!status.ok()) {
    set_error(err, err_len, status.ToString());
    delete p;
    return nullptr;
  }
  return p;
}

__attribute__((visibility("default"))) void csa_spm_free(void* h) { delete sp(h); }

// Writes up to `cap` ids; returns the total count (call again with a larger buffer if > cap),
// or -1 with `err` set.
__attribute__((visibility("default"))) int64_t csa_spm_encode(void* h, const char* text, size_t n,
                                                              int32_t* out, int64_t cap, char* err,
                                                              size_t err_len) {
  std::vector<int> ids;
  auto status = sp(h)->Encode(std::string(text, n), &ids);
  if (!status.ok()) {
    set_error(err, err_len, status.ToString());
    return -1;
  }
  for (int64_t i = 0; i < static_cast<int64_t>(ids.size()) && i < cap; ++i) out[i] = ids[i];
  return static_cast<int64_t>(ids.size());
}

// Returns a malloc'ed UTF-8 string (free with csa_spm_free_string), or nullptr with `err` set.
__attribute__((visibility("default"))) char* csa_spm_decode(void* h, const int32_t* ids, size_t n,
                                                            size_t* out_len, char* err,
                                                            size_t err_len) {
  std::vector<int> v(ids, ids + n);
  std::string text;
  auto status = sp(h)->Decode(v, &text);
  if (!status.ok()) {
    set_error(err, err_len, status.ToString());
    return nullptr;
  }
  char* out = static_cast<char*>(std::malloc(text.size() + 1));
  std::memcpy(out, text.data(), text.size());
  out[text.size()] = '\0';
  *out_len = text.size();
  return out;
}

__attribute__((visibility("default"))) void csa_spm_free_string(char* s) { std::free(s); }

__attribute__((visibility("default"))) int32_t csa_spm_piece_size(void* h) {
  return sp(h)->GetPieceSize();
}
__attribute__((visibility("default"))) int32_t csa_spm_bos_id(void* h) { return sp(h)->bos_id(); }
__attribute__((visibility("default"))) int32_t csa_spm_eos_id(void* h) { return sp(h)->eos_id(); }
__attribute__((visibility("default"))) int32_t csa_spm_unk_id(void* h) { return sp(h)->unk_id(); }
__attribute__((visibility("default"))) int32_t csa_spm_is_control(void* h, int32_t id) {
  return sp(h)->IsControl(id) ? 1 : 0;
}

// The piece string of `id` (pointer valid until the next call on this thread).
__attribute__((visibility("default"))) const char* csa_spm_id_to_piece(void* h, int32_t id,
                                                                       size_t* len) {
  thread_local std::string piece;
  piece = sp(h)->IdToPiece(id);
  *len = piece.size();
  return piece.c_str();
}

}  // extern "C"
