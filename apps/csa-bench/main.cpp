// csa-bench: time and peak memory of one attention call (dense / top-k / top-p, fused or explicit).
#include <iostream>

#include "csa/app/checks.h"
#include "csa/app/cli.h"
#include "csa/core/runtime.h"
#include "csa/tools/bench.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Benchmark one causal attention call on random q/k/v: median seconds, FLOPs, bytes and peak\n"
      "memory, as JSON. scripts/bench_scaling.sh runs it over context lengths (one process per\n"
      "point, since CPU peak memory is the process's RSS).\n\n"
      "Examples:\n"
      "  csa-bench --ctx 2048 --mode dense\n"
      "  csa-bench --ctx 8192 --mode top_k --budget 64 --path explicit\n"
      "  csa-bench --ctx 4096 --mode top_k --budget 8,8,16,64,128,256 --device cuda --dtype "
      "bfloat16"};
  csa::AttentionBenchOptions o;
  csa::app::CommonOptions common;
  std::string device = "cpu", dtype = "float32";
  app.add_option("--ctx", o.ctx, "Context length (queries = keys)")
      ->check(csa::app::integer_at_least(1));
  app.add_option("--batch", o.batch, "Sequences per call (1)")
      ->check(csa::app::integer_at_least(1));
  app.add_option("--heads", o.heads, "Query heads (6)")->check(csa::app::integer_at_least(1));
  app.add_option("--kv-heads", o.kv_heads, "KV heads (2)")->check(csa::app::integer_at_least(1));
  app.add_option("--head-dim", o.head_dim, "Head dimension (64)")
      ->check(csa::app::integer_at_least(1));
  app.add_option("--mode", o.mode, "dense | top_k | top_p");
  app.add_option("--budget", o.budgets, "top-k budget: one, or one per head")
      ->delimiter(',')
      ->check(csa::app::integer_at_least(1));
  app.add_option("--mass", o.mass, "top-p mass (0.9)")->check(csa::app::number_in(0, 1, true));
  app.add_option("--path", o.path, "auto (fused where available) | explicit (score tensor)");
  app.add_option("--repeats", o.repeats, "Timed repeats; the median is reported (5)")
      ->check(csa::app::integer_at_least(1));
  app.add_option("--device", device, "cpu, cuda, cuda:N");
  app.add_option("--dtype", dtype, "float32, bfloat16, float16");
  csa::app::add_common_options(app, common);
  return csa::app::run_main(app, common, argc, argv, [&] {
    o.device = csa::parse_device(device);
    o.dtype = csa::parse_dtype(dtype);
    csa::Json j = csa::run_attention_bench(o);
    j["command"] = csa::app::recorded_command();
    std::cout << csa::dump_json(j);
    return 0;
  });
}
