// The test binary's main: Catch2's, plus the prerequisites a tier needs, which
// tests/CMakeLists.txt passes per tier: `--requires shared` (the models and corpora of ../shared,
// or $CSA_SHARED) and `--requires cuda` (a CUDA device). Where one is absent no test runs: the
// reason is printed and the exit code is CSA_TEST_SKIP_CODE, the tier's ctest SKIP_RETURN_CODE,
// so ctest reports the tier as skipped, never as passed. A partly missing ../shared is not a
// skip: the tests that need the missing files fail.
//
// A run that starts exits 0 or 1. (Catch2's own exit code is the number of failed test cases,
// and a count equal to the skip code must not read as a skip.)
#define CATCH_CONFIG_RUNNER
#include <ATen/Context.h>

#include <catch2/catch.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "csa/core/file.h"
#include "support.h"

namespace {

// Why `prerequisite` is absent here, or "" when it is present.
std::string absent(const std::string& prerequisite) {
  if (prerequisite == "shared") {
    const std::string dir = csa::test::shared_dir();
    for (const char* sub : {"models", "corpora"})
      if (!csa::is_directory(dir + "/" + sub))
        return "needs the shared models and corpora, and " + dir + "/" + sub +
               " is not a directory (put ../shared beside the checkout or set CSA_SHARED)";
    return "";
  }
  if (prerequisite == "cuda")
    return at::hasCUDA() ? "" : "needs a CUDA device (libtorch without CUDA, or no GPU visible)";
  return "unknown";
}

}  // namespace

int main(int argc, char* argv[]) {
  Catch::Session session;
  std::vector<std::string> prerequisites;
  session.cli(session.cli() |
              Catch::clara::Opt(prerequisites, "shared|cuda")["--requires"](
                  "run only where this is present; else run nothing and exit with the skip code"));
  if (const int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
  for (const std::string& p : prerequisites) {
    const std::string why = absent(p);
    if (why == "unknown") {
      std::cerr << "--requires " << p << ": unknown (shared, cuda)\n";
      return 2;
    }
    if (!why.empty()) {
      const size_t n = Catch::filterTests(Catch::getAllTestCasesSorted(session.config()),
                                          session.config().testSpec(), session.config())
                           .size();
      std::cout << "SKIPPED: " << n << " test case" << (n == 1 ? "" : "s") << " not run: " << why
                << "\n";
      return CSA_TEST_SKIP_CODE;
    }
  }
  return session.run() == 0 ? 0 : 1;
}
