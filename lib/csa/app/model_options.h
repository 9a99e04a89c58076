// CLI11 bindings for the option groups several apps share (model, corpus, protocol).
#pragma once

#include <CLI/CLI.hpp>

#include "csa/app/checks.h"
#include "csa/corpus/corpus.h"
#include "csa/eval/perplexity.h"
#include "csa/model/model.h"

namespace csa::app {

inline void add_model_options(CLI::App& app, ModelArgs& m) {
  app.add_option("model", m.path,
                 "Model: model.pt, a Hugging Face directory, a .safetensors or a llama2.c .bin")
      ->required();
  app.add_option("--config", m.config, "config.json to use (required for traced archives)");
  app.add_option("--device", m.device, "cpu (default), cuda, cuda:N");
  app.add_option("--dtype", m.dtype, "Compute dtype: float32 (default), bfloat16, float16");
}

inline void add_corpus_options(CLI::App& app, CorpusOptions& c) {
  app.add_flag("--pretokenized", c.pretokenized,
               "The corpus file holds token ids (whitespace-separated or a JSON array)");
  app.add_flag("--replace-invalid-utf8", c.replace_invalid_utf8,
               "Replace invalid UTF-8 by U+FFFD instead of failing");
}

inline void add_protocol_options(CLI::App& app, EvalProtocol& p) {
  app.add_option("--ctx", p.ctx, "Window length (default: the model's context)")
      ->check(integer_at_least(2));
  app.add_option("--stride", p.stride, "Window stride (default: ctx / 2)")
      ->check(integer_at_least(1));
  app.add_option("--buckets", p.buckets, "Per-position buckets (default 16)")
      ->check(integer_at_least(1));
  app.add_option("--batch", p.batch, "Windows per forward pass (default: automatic)")
      ->check(integer_at_least(1));
}

}  // namespace csa::app
