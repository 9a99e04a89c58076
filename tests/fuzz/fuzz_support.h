// Shared by the libFuzzer targets (docs/robustness.md). A target feeds bytes to one parser; the
// parser may reject them only with a typed csa error (lib/csa/core/error.h). Anything else — an
// exception of another type, an internal-error (a broken invariant: a bug), a sanitizer report,
// a crash, a hang — aborts, and libFuzzer saves the input as crash-<sha1>.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>

#include "csa/core/error.h"

namespace csa::fuzz {

[[noreturn]] inline void die(const std::string& what) {
  std::fprintf(stderr, "FUZZ FAILURE: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// Runs `body`; typed input errors are the expected outcome for most inputs.
template <class F>
int guarded(F&& body) {
  try {
    body();
  } catch (const csa::Error& e) {
    if (e.kind() == csa::ErrorKind::kInternal) die(std::string("internal error: ") + e.what());
  } catch (const std::exception& e) {
    die(std::string("untyped exception ") + typeid(e).name() + ": " + e.what());
  } catch (...) {
    die("exception of an unknown type");
  }
  return 0;
}

inline std::string_view as_view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace csa::fuzz

#define CSA_FUZZ_REQUIRE(cond, what)                                   \
  do {                                                                 \
    if (!(cond)) ::csa::fuzz::die(std::string(what) + " (" #cond ")"); \
  } while (0)
