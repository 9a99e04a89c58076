#include "csa/core/hash.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "csa/core/error.h"

namespace csa {

struct Sha256::Context {
  Context() : md(EVP_MD_CTX_new()) {
    CSA_CHECK(md != nullptr, "EVP_MD_CTX_new failed (out of memory)");
    CSA_CHECK(EVP_DigestInit_ex(md, EVP_sha256(), nullptr) == 1,
              "EVP_DigestInit_ex(sha256) failed");
  }
  ~Context() { EVP_MD_CTX_free(md); }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  EVP_MD_CTX* md;
  bool finished = false;
};

Sha256::Sha256() : ctx_(std::make_unique<Context>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, size_t size) {
  CSA_CHECK(ctx_ != nullptr && !ctx_->finished, "Sha256::update after digest()");
  CSA_CHECK(EVP_DigestUpdate(ctx_->md, data, size) == 1, "EVP_DigestUpdate failed");
}

std::array<uint8_t, 32> Sha256::digest() {
  CSA_CHECK(ctx_ != nullptr && !ctx_->finished, "Sha256::digest called twice");
  std::array<uint8_t, 32> out{};
  unsigned int n = 0;
  CSA_CHECK(EVP_DigestFinal_ex(ctx_->md, out.data(), &n) == 1 && n == out.size(),
            "EVP_DigestFinal_ex failed");
  ctx_->finished = true;
  return out;
}

std::string Sha256::hex_digest() {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (uint8_t b : digest()) {
    s.push_back(kHex[b >> 4]);
    s.push_back(kHex[b & 15]);
  }
  return s;
}

std::string sha256_hex(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.hex_digest();
}

std::string sha256_implementation() { return OpenSSL_version(OPENSSL_VERSION); }

}  // namespace csa
