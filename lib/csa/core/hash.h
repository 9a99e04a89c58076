// SHA-256 (FIPS 180-4), used for model identity (content hash of the weights) and corpus identity.
// OpenSSL's libcrypto does the work (its EVP interface; SHA-NI / AVX2 code where the CPU has it).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace csa {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Finishes the hash: call one of these once, after the last update.
  std::array<uint8_t, 32> digest();
  std::string hex_digest();  // lowercase hex, 64 chars

 private:
  struct Context;  // owns the EVP_MD_CTX (kept out of this header)
  std::unique_ptr<Context> ctx_;
};

std::string sha256_hex(std::string_view data);

// What computes it, for benchmark records: e.g. "OpenSSL 3.0.11 19 Sep 2023".
std::string sha256_implementation();

}  // namespace csa
