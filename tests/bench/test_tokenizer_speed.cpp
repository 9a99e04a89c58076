// Tokenizer speed (the bench tier: hidden, never in ctest's tiers). Encodes
// ../shared/corpora/wikitext2-test.raw five times per tokenizer on one thread and reports the best;
// in Release builds it also checks < 1 s. Run by name: csa_tests "[bench]".
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "csa/core/file.h"
#include "csa/tokenizer/tokenizer.h"
#include "support.h"

using csa::test::shared_path;

TEST_CASE("tokenizer speed on wikitext2-test.raw", "[.][bench][tokenizer]") {
  const std::string text = csa::read_file(shared_path("corpora/wikitext2-test.raw"));
  for (const char* path :
       {"models/gpt2-mini", "models/qwen2-mini", "tokenizers/gpt2", "models/stories260K"}) {
    const auto tok = csa::Tokenizer::from_path(shared_path(path));
    double best = 1e9;
    size_t n = 0;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      n = tok->encode(text).size();
      best = std::min(best,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    WARN(path << ": " << n << " tokens, " << best * 1e3 << " ms (best of 5)");
#ifdef NDEBUG
    CHECK(best < 1.0);
#endif
  }
}
