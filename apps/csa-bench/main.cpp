// csa-bench: one attention call (dense / top-k / top-p, fused or explicit), a whole-model forward
// pass of a random-weight model, or a model load, timed; JSON on stdout.
#include <iostream>

#include "csa/app/checks.h"
#include "csa/app/cli.h"
#include "csa/core/runtime.h"
#include "csa/tools/bench.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Benchmarks, as JSON. Default: one causal attention call on random q/k/v (median seconds,\n"
      "FLOPs, bytes, peak memory); scripts/bench_scaling.sh runs it over context lengths (one\n"
      "process per point, since CPU peak memory is the process's RSS). --config takes the head\n"
      "layout from a Hugging Face config.json (configs/ holds the real models'). --forward times\n"
      "a whole forward pass of a random-weight model of --config; --load times loading a model\n"
      "and the weight hashing in it; --save-random writes a random checkpoint to load.\n\n"
      "Examples:\n"
      "  csa-bench --ctx 2048 --mode dense\n"
      "  csa-bench --config configs/llama-3.2-1b.json --ctx 8192 --mode top_k --budget 64\n"
      "  csa-bench --ctx 4096 --mode top_k --budget 8,8,16,64,128,256 --device cuda --dtype "
      "bfloat16\n"
      "  csa-bench --forward --config configs/qwen2.5-1.5b.json --batch 1 --ctx 256\n"
      "  csa-bench --save-random /tmp/llama-1b --config configs/llama-3.2-1b.json\n"
      "  csa-bench --load /tmp/llama-1b --repeats 3\n"
      "  csa-bench --forward --model ../shared/models/llama-mini --ctx 2048 --batch 4\n"
      "  csa-bench --gemm --model ../shared/models/llama-mini --ctx 2048 --batch 4"};
  csa::BenchOptions o;
  csa::app::CommonOptions common;
  int64_t ctx = 0, heads = 0, kv_heads = 0, head_dim = 0;
  int repeats = 0;
  auto* ctx_opt = app.add_option("--ctx", ctx,
                                 "Context length (attention: queries = keys, 2048; forward: tokens "
                                 "per sequence, 128)")
                      ->check(csa::app::integer_at_least(1));
  app.add_option("--batch", o.batch, "Sequences per call (1)")
      ->check(csa::app::integer_at_least(1));
  app.add_option("--config", o.config,
                 "Hugging Face config.json: the head layout (attention), the model (--forward, "
                 "--save-random), a config override (--load)");
  auto* heads_opt = app.add_option("--heads", heads, "Query heads (6, or the config's)")
                        ->check(csa::app::integer_at_least(1));
  auto* kv_opt = app.add_option("--kv-heads", kv_heads, "KV heads (2, or the config's)")
                     ->check(csa::app::integer_at_least(1));
  auto* dim_opt = app.add_option("--head-dim", head_dim, "Head dimension (64, or the config's)")
                      ->check(csa::app::integer_at_least(1));
  app.add_option("--mode", o.mode, "dense | top_k | top_p");
  app.add_option("--budget", o.budgets, "top-k budget: one, or one per head")
      ->delimiter(',')
      ->check(csa::app::integer_at_least(1));
  app.add_option("--mass", o.mass, "top-p mass (0.9)")->check(csa::app::number_in(0, 1, true));
  app.add_option("--path", o.path, "auto (fused where available) | explicit (score tensor)");
  auto* repeats_opt =
      app.add_option("--repeats", repeats,
                     "Timed repeats; the median is reported (attention 5, forward/load 3)")
          ->check(csa::app::integer_at_least(1));
  app.add_flag("--forward", o.forward,
               "Time a forward pass: of --model at csa-eval's batching (--corpus, --ctx, --batch, "
               "--mode dense|top_k, --budget K), or of a random model of --config");
  app.add_flag("--decode", o.decode,
               "One decode step over a paged KV cache of --ctx positions: dense SDPA, paged "
               "dense, paged top-k and exact top-k at each --fraction (attention/decode.h)");
  app.add_flag("--decode-model", o.decode_model,
               "Whole-model decode steps of a random model of --config over paged caches of "
               "--ctx positions: dense vs paged top-k, tokens/s");
  app.add_option("--page", o.page, "--decode: page size of the KV cache (16)");
  app.add_option("--kept-pages-per-warp", o.kept_pages_per_warp,
                 "--decode: sparse steps' attend blocks for about this many kept pages per warp "
                 "(1)")
      ->check(CLI::PositiveNumber);
  app.add_option("--fraction", o.fractions,
                 "--decode: budgets as fractions of --ctx (repeatable; default 0.05 0.1)");
  app.add_flag("--gemm", o.gemm,
               "Time BLAS sgemm alone on the shapes of --model's forward (the GEMM peer)");
  app.add_option("--model", o.model, "Model for --forward / --gemm");
  app.add_option("--corpus", o.corpus, "Text for --forward --model (default: random token ids)");
  app.add_option("--load", o.load, "Time loading this model (and its weight hashing)");
  app.add_option("--save-random", o.save_random,
                 "Write a random-weight checkpoint of --config to this directory");
  app.add_option("--seed", o.seed, "Seed of the random weights and tokens (0)");
  app.add_option("--stored-dtype", o.stored_dtype,
                 "dtype of the random weights as stored (forward: float32, save-random: "
                 "bfloat16)");
  app.add_option("--device", o.device, "cpu, cuda, cuda:N");
  app.add_option("--dtype", o.dtype, "Compute dtype: float32, bfloat16, float16");
  csa::app::add_common_options(app, common);
  return csa::app::run_main(app, common, argc, argv, [&] {
    if (ctx_opt->count()) o.ctx = ctx;
    if (heads_opt->count()) o.heads = heads;
    if (kv_opt->count()) o.kv_heads = kv_heads;
    if (dim_opt->count()) o.head_dim = head_dim;
    if (repeats_opt->count()) o.repeats = repeats;
    csa::Json j = csa::run_bench(o);
    j["command"] = csa::app::recorded_command();
    std::cout << csa::dump_json(j);
    return 0;
  });
}
