#include "csa/tools/bench.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <sys/resource.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <functional>

#include "csa/attention/attention.h"
#include "csa/attention/cpu_kernels.h"
#include "csa/attention/decode.h"
#include "csa/attention/sparse_hook.h"
#include "csa/core/error.h"
#include "csa/core/file.h"
#include "csa/core/hash.h"
#include "csa/core/runtime.h"
#include "csa/corpus/corpus.h"
#include "csa/eval/perplexity.h"
#include "csa/model/config.h"
#include "csa/model/decoder.h"
#include "csa/model/model.h"
#include "csa/model/random.h"

#if defined(CSA_WITH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace csa {
namespace {

void sync(const at::Device& d) {
#if defined(CSA_WITH_CUDA)
  if (d.is_cuda()) c10::cuda::device_synchronize();
#else
  (void)d;
#endif
}

int64_t peak_bytes(const at::Device& d) {
#if defined(CSA_WITH_CUDA)
  if (d.is_cuda()) {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(d.index() < 0 ? 0 : d.index());
    return stats.allocated_bytes[0].peak;
  }
#endif
  (void)d;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;  // whole process, kilobytes on Linux
}

void reset_peak(const at::Device& d) {
#if defined(CSA_WITH_CUDA)
  if (d.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(d.index() < 0 ? 0 : d.index());
#else
  (void)d;
#endif
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The head layout: the config's where one is named; an explicit value must agree with it.
struct HeadLayout {
  int64_t heads = 6, kv_heads = 2, head_dim = 64;
  Json model;  // the config's summary, or null
};

HeadLayout head_layout(const AttentionBenchOptions& o) {
  HeadLayout h;
  if (!o.config.empty()) {
    const ModelConfig c = parse_model_config(read_json_file(o.config), o.config);
    h.heads = c.n_head;
    h.kv_heads = c.n_head_kv;
    h.head_dim = c.head_dim;
    h.model = {{"config", o.config}, {"model_type", c.model_type}, {"family", c.family}};
    auto agree = [&](const char* flag, const std::optional<int64_t>& given, int64_t from_config,
                     const char* field) {
      if (given && *given != from_config)
        throw UsageError("csa-bench: " + std::string(flag) + " " + std::to_string(*given) +
                         " disagrees with --config " + o.config + " (" + field + " " +
                         std::to_string(from_config) + "): drop one of them");
    };
    agree("--heads", o.heads, c.n_head, "num_attention_heads");
    agree("--kv-heads", o.kv_heads, c.n_head_kv, "num_key_value_heads");
    agree("--head-dim", o.head_dim, c.head_dim, "head_dim");
    return h;
  }
  if (o.heads) h.heads = *o.heads;
  if (o.kv_heads) h.kv_heads = *o.kv_heads;
  if (o.head_dim) h.head_dim = *o.head_dim;
  return h;
}

}  // namespace

Json run_attention_bench(const AttentionBenchOptions& o) {
  const HeadLayout layout = head_layout(o);
  const int64_t heads = layout.heads, kv_heads = layout.kv_heads, head_dim = layout.head_dim;
  if (o.ctx < 1 || o.batch < 1 || heads < 1 || kv_heads < 1 || heads % kv_heads != 0 ||
      head_dim < 1 || o.repeats < 1)
    throw UsageError(
        "csa-bench: ctx, batch, heads, head_dim, repeats must be >= 1 and heads a "
        "multiple of kv_heads");
  const SparsityKind kind = parse_sparsity_kind(o.mode, "csa-bench: --mode");
  if (kind != SparsityKind::kDense && kind != SparsityKind::kTopK && kind != SparsityKind::kTopP)
    throw UsageError("csa-bench: --mode must be dense, top_k or top_p (got '" + o.mode + "')");
  const bool dense = kind == SparsityKind::kDense;
  if (o.path != "auto" && o.path != "explicit")
    throw UsageError("csa-bench: --path must be auto or explicit (got '" + o.path + "')");

  std::vector<int64_t> k = o.budgets.empty() ? std::vector<int64_t>{64} : o.budgets;
  if (k.size() == 1) k.assign(static_cast<size_t>(heads), k[0]);
  if (static_cast<int64_t>(k.size()) != heads)
    throw UsageError("csa-bench: --budget needs one value or one per head (" +
                     std::to_string(heads) + ")");

  at::manual_seed(0);
  auto opts = at::TensorOptions().device(o.device).dtype(o.dtype);
  at::Tensor q = at::randn({o.batch, heads, o.ctx, head_dim}, opts);
  at::Tensor kk = at::randn({o.batch, kv_heads, o.ctx, head_dim}, opts);
  at::Tensor v = at::randn({o.batch, kv_heads, o.ctx, head_dim}, opts);
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));

  SparsitySpec spec = dense                         ? SparsitySpec::dense()
                      : kind == SparsityKind::kTopK ? SparsitySpec::top_k({k}, "top-k")
                                                    : SparsitySpec::top_p(1, heads, o.mass);
  SparseAttentionHook hook(spec, 1, heads, kv_heads, o.ctx + 1);
  AttentionOptions ao;
  if (o.path == "explicit") {
    ao.allow_fused = false;
    ao.allow_fused_cpu = false;
    ao.allow_fused_cuda = false;
  }
  AttentionHook* h = dense ? nullptr : &hook;  // dense + explicit: no fused flags

  c10::NoGradGuard no_grad;
  std::vector<double> secs, cpu_secs;
  attend(q, kk, v, scale, 0, h, ao);  // warm-up (allocator, BLAS threads)
  sync(o.device);
  reset_peak(o.device);
  for (int r = 0; r < o.repeats; ++r) {
    hook.reset_tally();
    const double c0 = process_cpu_seconds();
    auto t0 = std::chrono::steady_clock::now();
    at::Tensor out = attend(q, kk, v, scale, 0, h, ao);
    sync(o.device);
    secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    cpu_secs.push_back(process_cpu_seconds() - c0);
  }
  const double median = median_of(secs);

  // Work: causal scores are B·H·T(T+1)/2 dot products of D; A·V reads the kept keys.
  const double causal = static_cast<double>(o.batch * heads) * static_cast<double>(o.ctx) *
                        static_cast<double>(o.ctx + 1) / 2.0;
  const double reads = dense ? causal : hook.tally().q_sparse_total();
  const double kv_reads =
      dense ? causal / static_cast<double>(heads / kv_heads) : hook.tally().kv_sparse_total();
  const auto D = static_cast<double>(head_dim);
  const double elt = static_cast<double>(at::elementSize(o.dtype));
  Json j;
  if (!layout.model.is_null()) j["model"] = layout.model;
  j["ctx"] = o.ctx;
  j["batch"] = o.batch;
  j["heads"] = heads;
  j["kv_heads"] = kv_heads;
  j["head_dim"] = head_dim;
  j["mode"] = sparsity_kind_name(kind);
  if (kind == SparsityKind::kTopK) j["budgets"] = k;
  if (kind == SparsityKind::kTopP) j["mass"] = o.mass;
  j["path"] = o.path;
  j["device"] = device_description(o.device);
  j["dtype"] = dtype_name(o.dtype);
  j["threads"] = at::get_num_threads();
  j["seconds"] = secs;
  j["median_seconds"] = median;
  // CPU time of the whole process per repeat (all threads): on a shared machine the wall time
  // depends on the other jobs, this much less (spinning OpenMP threads count too).
  j["cpu_seconds"] = cpu_secs;
  j["median_cpu_seconds"] = median_of(cpu_secs);
  j["reads_fraction"] = reads / causal;
  // FLOPs: the causal q·k scores (all of them: selection needs them) + A·V over the kept keys.
  j["flops"] = 2.0 * D * causal + 2.0 * D * reads;
  j["flops_dense_equivalent"] = 4.0 * D * causal;
  // Bytes that must move at least once: q, k, v, out; plus the keys' V rows actually read.
  j["bytes_min"] =
      elt * D * static_cast<double>(o.batch) *
      (2.0 * static_cast<double>(heads * o.ctx) + 2.0 * static_cast<double>(kv_heads * o.ctx));
  j["kv_bytes_read"] = elt * D * kv_reads * 2.0;
  j["gflops_per_second"] = (2.0 * D * causal + 2.0 * D * reads) / median / 1e9;
  j["peak_memory_bytes"] = peak_bytes(o.device);
  j["peak_memory_scope"] = o.device.is_cuda() ? "CUDA caching allocator, this call" : "process RSS";
  return j;
}

Json forward_flops_per_token(const Json& config, const std::string& origin, int64_t tokens) {
  const ModelConfig c = parse_model_config(config, origin);
  const auto C = static_cast<double>(c.d_model), F = static_cast<double>(c.d_ff);
  const auto HD = static_cast<double>(c.n_head * c.head_dim);
  // Weight matrices a token multiplies: q/k/v, out, up (+ gate), down per layer; lm_head.
  const double per_layer =
      static_cast<double>(c.qkv_rows()) * C + C * HD + (c.gated_mlp ? 2.0 : 1.0) * F * C + F * C;
  const double matmul =
      2.0 * (static_cast<double>(c.n_layer) * per_layer + static_cast<double>(c.vocab_size) * C);
  // Causal: the token at position t reads t + 1 keys; (tokens + 1) / 2 on average. q.k and p.v.
  const double keys = (static_cast<double>(tokens) + 1.0) / 2.0;
  const double attention = 2.0 * 2.0 * static_cast<double>(c.n_layer) * HD * keys;
  return {{"matmul", matmul}, {"attention", attention}, {"total", matmul + attention}};
}

Json run_forward_bench(const ForwardBenchOptions& o) {
  if (o.config.empty()) throw UsageError("csa-bench --forward: needs --config CONFIG.json");
  if (o.batch < 1 || o.tokens < 1 || o.repeats < 1)
    throw UsageError("csa-bench --forward: batch, tokens (--ctx) and repeats must be >= 1");
  const Json config = read_json_file(o.config);

  auto t0 = std::chrono::steady_clock::now();
  RandomWeightsOptions w;
  w.seed = o.seed;
  w.stored_dtype = o.stored_dtype;
  LoadOptions load;
  load.device = o.device;
  load.dtype = o.dtype;
  const Model model = random_model(config, o.config, w, load);
  const double build_seconds = seconds_since(t0);
  if (o.tokens > model.config.n_ctx)
    throw UsageError("csa-bench --forward: --ctx " + std::to_string(o.tokens) +
                     " exceeds the model's context (" + std::to_string(model.config.n_ctx) + ")");

  c10::NoGradGuard no_grad;
  Decoder decoder(model);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed + 1);
  const at::Tensor tokens =
      at::randint(model.config.vocab_size, {o.batch, o.tokens}, gen, at::kLong).to(o.device);
  decoder.forward(tokens);  // warm-up (allocator, BLAS threads)
  sync(o.device);
  reset_peak(o.device);
  std::vector<double> secs;
  for (int r = 0; r < o.repeats; ++r) {
    t0 = std::chrono::steady_clock::now();
    at::Tensor logits = decoder.forward(tokens);  // [B, T, V] float32
    sync(o.device);
    secs.push_back(seconds_since(t0));
  }
  const double median = median_of(secs);
  const Json flops = forward_flops_per_token(config, o.config, o.tokens);
  const double n_tokens = static_cast<double>(o.batch * o.tokens);

  Json j;
  j["mode"] = "forward";
  j["model"] = config_summary(model.config);
  j["model"]["config"] = o.config;
  j["weights"] = {{"random", true},
                  {"seed", o.seed},
                  {"stored_dtype", dtype_name(o.stored_dtype)},
                  {"weights_sha256", model.identity.weights_sha256}};
  j["batch"] = o.batch;
  j["tokens"] = o.tokens;
  j["device"] = device_description(o.device);
  j["dtype"] = dtype_name(o.dtype);
  j["threads"] = at::get_num_threads();
  j["build_seconds"] = build_seconds;
  j["seconds"] = secs;
  j["median_seconds"] = median;
  j["tokens_per_second"] = n_tokens / median;
  j["flops_per_token"] = flops;
  j["flops_per_token_formula"] =
      "2 x (layers x (qkv_rows x C + C x H x D + (2 if gated) x F x C + F x C) + V x C) + "
      "4 x layers x H x D x (T + 1) / 2";
  j["gflops_per_second"] = flops["total"].get<double>() * n_tokens / median / 1e9;
  j["peak_memory_bytes"] = peak_bytes(o.device);
  j["peak_memory_scope"] =
      o.device.is_cuda() ? "CUDA caching allocator, timed passes" : "process RSS";
  return j;
}

Json run_load_bench(const LoadBenchOptions& o) {
  if (o.model.empty()) throw UsageError("csa-bench --load: needs a model path");
  if (o.repeats < 1) throw UsageError("csa-bench --load: --repeats must be >= 1");
  LoadOptions load;
  load.config_path = o.config;
  load.device = o.device;
  load.dtype = o.dtype;
  std::vector<double> total, read, build;
  std::string sha;
  for (int r = 0; r < o.repeats; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    Checkpoint ck = read_checkpoint(o.model, o.config);
    const double t_read = seconds_since(t0);
    auto t1 = std::chrono::steady_clock::now();
    const Model m = build_model(std::move(ck), load);  // = load_model(model, load)
    build.push_back(seconds_since(t1));
    read.push_back(t_read);
    total.push_back(seconds_since(t0));
    sha = m.identity.weights_sha256;
  }

  // SHA-256 alone over the bytes build_model hashes (the weights as stored, a tied lm_head once),
  // from the same mapped file; one untimed pass first so every page is mapped and cached.
  const Checkpoint ck = read_checkpoint(o.model, o.config);
  const ModelConfig c = parse_model_config(ck.config, ck.config_origin);
  const std::map<std::string, at::Tensor> tensors = source_tensors(ck, c);
  int64_t bytes = 0;
  auto hash_all = [&] {
    Sha256 h;
    bytes = 0;
    for (const auto& [name, t] : tensors) {
      const at::Tensor b = t.contiguous();
      const auto n = static_cast<size_t>(b.numel()) * b.element_size();
      h.update(b.data_ptr(), n);
      bytes += static_cast<int64_t>(n);
    }
    return h.hex_digest();
  };
  hash_all();
  std::vector<double> hash;
  for (int r = 0; r < o.repeats; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    hash_all();
    hash.push_back(seconds_since(t0));
  }

  const double median = median_of(total), hash_median = median_of(hash);
  Json j;
  j["mode"] = "load";
  j["model"] = o.model;
  if (!o.config.empty()) j["config"] = o.config;
  j["format"] = ck.format;
  j["family"] = c.family;
  j["device"] = device_description(o.device);
  j["dtype"] = dtype_name(o.dtype);
  j["threads"] = at::get_num_threads();
  j["weights_sha256"] = sha;
  j["seconds"] = total;
  j["median_seconds"] = median;
  j["read_seconds"] = read;
  j["build_seconds"] = build;
  j["hash"] = "SHA-256 (" + sha256_implementation() + ")";
  j["hash_bytes"] = bytes;
  j["hash_seconds"] = hash;
  j["hash_median_seconds"] = hash_median;
  j["hash_mb_per_second"] = static_cast<double>(bytes) / hash_median / 1e6;
  j["hash_fraction"] = hash_median / median;
  j["peak_memory_bytes"] = peak_bytes(o.device);
  j["peak_memory_scope"] = o.device.is_cuda() ? "CUDA caching allocator" : "process RSS";
  return j;
}

Json run_save_random(const SaveRandomOptions& o) {
  if (o.config.empty()) throw UsageError("csa-bench --save-random: needs --config CONFIG.json");
  if (o.dir.empty()) throw UsageError("csa-bench --save-random: needs a directory");
  auto t0 = std::chrono::steady_clock::now();
  RandomWeightsOptions w;
  w.seed = o.seed;
  w.stored_dtype = o.stored_dtype;
  Json j = write_random_checkpoint(read_json_file(o.config), o.config, o.dir, w);
  j["mode"] = "save-random";
  j["config"] = o.config;
  j["seed"] = o.seed;
  j["stored_dtype"] = dtype_name(o.stored_dtype);
  j["seconds"] = seconds_since(t0);
  return j;
}

namespace {

// The matrix work of one dense forward of `o.batch` windows of `o.ctx` tokens, by part.
struct ForwardFlops {
  double linear = 0, lm_head = 0, attention = 0;
  double total() const { return linear + lm_head + attention; }
};

ForwardFlops forward_flops(const ModelConfig& c, int64_t batch, int64_t ctx) {
  const auto C = static_cast<double>(c.d_model), D = static_cast<double>(c.head_dim);
  const auto H = static_cast<double>(c.n_head), Hkv = static_cast<double>(c.n_head_kv);
  const auto F = static_cast<double>(c.d_ff), V = static_cast<double>(c.vocab_size);
  const auto L = static_cast<double>(c.n_layer), B = static_cast<double>(batch);
  const auto T = static_cast<double>(ctx);
  const double up = c.gated_mlp ? 2 * F : F;
  ForwardFlops f;
  f.linear = L * B * T * 2 * (C * (H + 2 * Hkv) * D + H * D * C + C * up + F * C);
  f.lm_head = B * (T - 1) * 2 * C * V;                // targets 1..T-1 of each window
  f.attention = L * B * H * 4 * D * T * (T + 1) / 2;  // q·k and p·v over the causal keys
  return f;
}

void check_forward_options(const ModelForwardBenchOptions& o) {
  if (o.model.empty()) throw UsageError("csa-bench: --forward and --gemm need --model");
  if (o.ctx < 2 || o.batch < 1 || o.repeats < 1 || o.budget < 1)
    throw UsageError("csa-bench: --ctx >= 2, --batch, --repeats and --budget >= 1");
}

Json model_json(const Model& model, const ModelForwardBenchOptions& o) {
  const ModelConfig& c = model.config;
  return {{"model", o.model},       {"family", c.family}, {"n_layer", c.n_layer},
          {"d_model", c.d_model},   {"n_head", c.n_head}, {"n_head_kv", c.n_head_kv},
          {"head_dim", c.head_dim}, {"d_ff", c.d_ff},     {"vocab_size", c.vocab_size}};
}

}  // namespace

Json run_model_forward_bench(const ModelForwardBenchOptions& o) {
  check_forward_options(o);
  const SparsityKind kind = parse_sparsity_kind(o.mode, "csa-bench: --mode");
  if (kind != SparsityKind::kDense && kind != SparsityKind::kTopK)
    throw UsageError("csa-bench --forward: --mode must be dense or top_k");
  if (o.path != "auto" && o.path != "explicit")
    throw UsageError("csa-bench: --path must be auto or explicit (got '" + o.path + "')");
  ModelArgs args;
  args.path = o.model;
  args.device = o.device;
  args.dtype = o.dtype;
  Model model = args.load();
  const ModelConfig& c = model.config;
  if (o.ctx > c.n_ctx)
    throw UsageError("csa-bench: --ctx " + std::to_string(o.ctx) + " exceeds the model's " +
                     std::to_string(c.n_ctx));
  std::vector<int64_t> ids;
  if (!o.corpus.empty()) {
    ids = load_corpus(o.corpus, model).slice(0, o.batch * o.ctx, o.batch * o.ctx, "benchmark");
  } else {
    at::manual_seed(0);
    at::Tensor r = at::randint(c.vocab_size, {o.batch * o.ctx}, at::kLong);
    ids.assign(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
  }
  EvalProtocol proto;  // one forward pass of `batch` non-overlapping windows
  proto.ctx = o.ctx;
  proto.stride = o.ctx;
  proto.batch = o.batch;
  AttentionOptions ao;
  if (o.path == "explicit") ao.allow_fused_cpu = ao.allow_fused_cuda = false;
  Decoder decoder(model, ao);
  SparsitySpec spec = SparsitySpec::uniform_top_k(c.n_layer, c.n_head, o.budget);
  SparseAttentionHook hook(spec, c.n_layer, c.n_head, c.n_head_kv, o.ctx);
  SparseAttentionHook* h = kind == SparsityKind::kTopK ? &hook : nullptr;
  std::vector<double> secs, cpu_secs;
  PassResult pass;
  for (int r = 0; r <= o.repeats; ++r) {  // the first is a warm-up
    const double c0 = process_cpu_seconds();
    pass = evaluate_pass(decoder, ids, proto, h, "forward");
    if (r == 0) continue;
    secs.push_back(pass.seconds);
    cpu_secs.push_back(process_cpu_seconds() - c0);
  }
  const ForwardFlops f = forward_flops(c, o.batch, o.ctx);
  const double median = median_of(secs);
  Json j = {{"kind", "forward"},
            {"model", model_json(model, o)},
            {"ctx", o.ctx},
            {"batch", o.batch},
            {"tokens", o.batch * o.ctx},
            {"corpus", o.corpus.empty() ? "random ids" : o.corpus},
            {"mode", sparsity_kind_name(kind)},
            {"path", o.path},
            {"device", o.device},
            {"dtype", o.dtype}};
  if (kind == SparsityKind::kTopK) {
    j["budget"] = o.budget;
    j["reads_fraction"] = pass.reads.q_fraction();
  }
  j["threads"] = at::get_num_threads();
  j["seconds"] = secs;
  j["median_seconds"] = median;
  j["cpu_seconds"] = cpu_secs;
  j["median_cpu_seconds"] = median_of(cpu_secs);
  j["flops"] = f.total();
  j["flops_by_part"] = {{"linear", f.linear}, {"lm_head", f.lm_head}, {"attention", f.attention}};
  j["flops_note"] =
      "a dense forward's matrix work (linear layers, LM head on ctx - 1 rows per window, q.k and "
      "p.v over the causal keys), also for top_k, so rates compare at equal work";
  j["gflops_per_second"] = f.total() / median / 1e9;
  j["ppl"] = pass.ppl();
  j["peak_memory_bytes"] = peak_bytes(at::kCPU);
  return j;
}

Json run_gemm_bench(const ModelForwardBenchOptions& o) {
  check_forward_options(o);
  ModelArgs args;
  args.path = o.model;
  args.device = "cpu";
  const ModelConfig c = args.load().config;
  const int64_t C = c.d_model, D = c.head_dim, H = c.n_head, Hkv = c.n_head_kv, F = c.d_ff;
  const int64_t G = H / Hkv, N = o.batch * o.ctx, T = o.ctx, L = c.n_layer;
  struct Shape {
    std::string name;
    bool nt;  // C = A·Bᵀ (a linear layer, the scores) or C = A·B (the values)
    int64_t M, N, K, count;
  };
  const std::vector<Shape> shapes = {{"qkv", true, N, (H + 2 * Hkv) * D, C, L},
                                     {"out", true, N, C, H * D, L},
                                     {"mlp_up", true, N, c.gated_mlp ? 2 * F : F, C, L},
                                     {"mlp_down", true, N, C, F, L},
                                     {"lm_head", true, T - 1, c.vocab_size, C, o.batch},
                                     {"attention_scores", true, G * T, T, D, L * o.batch * Hkv},
                                     {"attention_values", false, G * T, D, T, L * o.batch * Hkv}};
  Json rows = Json::array();
  double flops = 0, seconds = 0, lin_flops = 0, lin_seconds = 0;
  for (const Shape& s : shapes) {
    at::manual_seed(1);
    at::Tensor A = at::randn({s.M, s.K});
    at::Tensor B = s.nt ? at::randn({s.N, s.K}) : at::randn({s.K, s.N});
    at::Tensor Cm = at::empty({s.M, s.N});
    auto run = [&] {
      if (s.nt)
        cpu::gemm_nt(s.M, s.N, s.K, 1.0f, A.data_ptr<float>(), s.K, B.data_ptr<float>(), s.K,
                     Cm.data_ptr<float>(), s.N);
      else
        cpu::gemm_nn(s.M, s.N, s.K, A.data_ptr<float>(), s.K, B.data_ptr<float>(), s.N,
                     Cm.data_ptr<float>(), s.N);
    };
    run();  // warm-up
    std::vector<double> secs;
    // Enough calls per sample for ~50 ms of work at 50 GFLOP/s.
    const double f =
        2.0 * static_cast<double>(s.M) * static_cast<double>(s.N) * static_cast<double>(s.K);
    const int calls = std::max(1, static_cast<int>(2.5e9 / f));
    for (int r = 0; r < std::max(3, o.repeats); ++r) {
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < calls; ++i) run();
      secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                     calls);
    }
    const double t = median_of(secs);
    const auto n = static_cast<double>(s.count);
    flops += n * f;
    seconds += n * t;
    if (s.name.rfind("attention", 0) != 0) {
      lin_flops += n * f;
      lin_seconds += n * t;
    }
    rows.push_back({{"name", s.name},
                    {"M", s.M},
                    {"N", s.N},
                    {"K", s.K},
                    {"per_forward", s.count},
                    {"median_seconds", t},
                    {"gflops_per_second", f / t / 1e9}});
  }
  Json j = {{"kind", "gemm"},
            {"model", {{"model", o.model}, {"d_model", C}, {"n_layer", L}}},
            {"ctx", o.ctx},
            {"batch", o.batch},
            {"blas", cpu::gemm_uses_blas() ? "cblas_sgemm (the build's BLAS)" : "portable loops"},
            {"threads", at::get_num_threads()},
            {"shapes", rows},
            {"gflops_per_second", flops / seconds / 1e9},
            {"linear_gflops_per_second", lin_flops / lin_seconds / 1e9},
            {"note",
             "FLOP-weighted over one forward's worth of each shape (per_forward); attention as "
             "full-square dense products"}};
  return j;
}

namespace {

// Whole-model decode steps of a random-weight model over paged caches filled with random keys
// and values (no prefill: the attention's cost does not depend on what the keys are).
Json run_decode_model_bench(const DecodeBenchOptions& o) {
  if (o.config.empty()) throw UsageError("csa-bench --decode-model needs --config");
  const Json config = read_json_file(o.config);
  RandomWeightsOptions w;
  w.stored_dtype = o.dtype;
  LoadOptions load;
  load.device = o.device;
  load.dtype = o.dtype;
  const Model model = random_model(config, o.config, w, load);
  const ModelConfig& c = model.config;
  const int64_t B = o.batch, S = o.ctx, steps = 3 + int64_t(o.repeats) * o.iters;
  if (S + steps > c.n_ctx)
    throw UsageError("csa-bench --decode-model: --ctx " + std::to_string(S) + " + " +
                     std::to_string(steps) + " steps exceeds the model's context (" +
                     std::to_string(c.n_ctx) + ")");
  c10::NoGradGuard no_grad;
  Decoder decoder(model);
  auto opts = at::TensorOptions().device(o.device).dtype(o.dtype);
  const at::Tensor token = at::randint(c.vocab_size, {B, 1}, at::kLong).to(o.device);
  Json runs = Json::array();
  std::vector<double> fractions = {1.0};
  fractions.insert(fractions.end(), o.fractions.begin(), o.fractions.end());
  // Each configuration eagerly (every operation launched from the host) and replaying one CUDA
  // graph per step (KvCache::graphs; the GPU builds), on a fresh cache each.
  std::vector<bool> graph_modes = {false};
  if (o.device.is_cuda() && decode_kernels_built()) graph_modes.push_back(true);
  // Each sparse fraction with per-head page sets and with one per KV group (rule.h's `group`).
  struct Variant {
    double f;
    bool group;
  };
  std::vector<Variant> variants;
  for (double f : fractions) {
    variants.push_back({f, false});
    if (f < 1.0) variants.push_back({f, true});
  }
  for (bool graphs : graph_modes) {
    for (const auto [f, group] : variants) {
      KvCache cache;
      cache.page = o.page;
      cache.graphs = graphs;
      cache.decode.kept_pages_per_warp = o.kept_pages_per_warp;
      cache.paged.assign(static_cast<size_t>(c.n_layer), PagedKvCache(o.page));
      at::manual_seed(1);
      for (auto& pc : cache.paged) {
        at::Tensor k = at::randn({B, c.n_head_kv, S, c.head_dim}, opts);
        pc.reserve(S + steps, k);
        pc.append(k, at::randn({B, c.n_head_kv, S, c.head_dim}, opts));
      }
      cache.length = S;
      const int64_t kb = std::max<int64_t>(1, std::llround(f * static_cast<double>(S)));
      SparseAttentionHook hook(SparsitySpec::uniform_top_k(c.n_layer, c.n_head, kb)
                                   .with_selection(PageSelection{o.page, false, false, 1, group}),
                               c.n_layer, c.n_head, c.n_head_kv, c.n_ctx);
      hook.set_counting(false);  // time the decoding, not the reads accounting
      AttentionHook* h = f < 1.0 ? &hook : nullptr;
      for (int i = 0; i < 3; ++i) decoder.forward(token, h, &cache);  // graphs: warm, capture
      sync(o.device);
      std::vector<double> secs;
      for (int r = 0; r < o.repeats; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < o.iters; ++i) decoder.forward(token, h, &cache);
        sync(o.device);
        secs.push_back(seconds_since(t0) / o.iters);
      }
      char label[80];
      const char* mode = graphs ? " (graphs)" : "";
      if (f < 1.0)
        std::snprintf(label, sizeof label, "paged %stop-k %g%%%s", group ? "group " : "", 100 * f,
                      mode);
      else
        std::snprintf(label, sizeof label, "dense paged%s", mode);
      runs.push_back({{"label", label},
                      {"graphs", graphs},
                      {"seconds_per_step", secs},
                      {"median_seconds_per_step", median_of(secs)},
                      {"tokens_per_second", static_cast<double>(B) / median_of(secs)}});
    }
  }
  Json j;
  j["mode"] = "decode-model";
  j["model"] = config_summary(c);
  j["model"]["config"] = o.config;
  j["ctx"] = S;
  j["batch"] = B;
  j["page"] = o.page;
  j["kept_pages_per_warp"] = o.kept_pages_per_warp;
  j["device"] = device_description(o.device);
  j["dtype"] = dtype_name(o.dtype);
  j["runs"] = runs;
  return j;
}

}  // namespace

Json run_decode_bench(const DecodeBenchOptions& o) {
  AttentionBenchOptions ao;
  ao.config = o.config, ao.heads = o.heads, ao.kv_heads = o.kv_heads, ao.head_dim = o.head_dim;
  const HeadLayout layout = head_layout(ao);
  const int64_t H = layout.heads, Hkv = layout.kv_heads, D = layout.head_dim;
  if (o.ctx < 1 || o.batch < 1 || o.repeats < 1 || o.iters < 1 || H % Hkv != 0)
    throw UsageError(
        "csa-bench --decode: ctx, batch, repeats >= 1 and heads a multiple of kv_heads");
  for (double f : o.fractions)
    if (!(f > 0 && f <= 1))
      throw UsageError("csa-bench --fraction: in (0, 1], got " + std::to_string(f));
  if (o.model) return run_decode_model_bench(o);
  const int64_t B = o.batch, S = o.ctx;
  at::manual_seed(0);
  auto opts = at::TensorOptions().device(o.device).dtype(o.dtype);
  at::Tensor q = at::randn({B, H, 1, D}, opts);
  PagedKvCache cache(o.page);
  {
    at::Tensor k = at::randn({B, Hkv, S, D}, opts), v = at::randn({B, Hkv, S, D}, opts);
    cache.reserve(S, k);
    cache.append(k, v);
  }
  const at::Tensor k = cache.keys(), v = cache.values();  // contiguous: capacity == S
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  c10::NoGradGuard no_grad;
  auto time = [&](const std::function<void()>& fn) {
    for (int i = 0; i < 3; ++i) fn();
    sync(o.device);
    std::vector<double> secs;
    for (int r = 0; r < o.repeats; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < o.iters; ++i) fn();
      sync(o.device);
      secs.push_back(seconds_since(t0) / o.iters);
    }
    return secs;
  };
  // The same call replayed from a CUDA graph (GPU builds): the device's time per call without
  // the host's launches. Empty where graphs are not built.
  const bool graphs = o.device.is_cuda() && decode_kernels_built();
  auto time_graph = [&](const std::function<void()>& fn) {
    DecodeGraph graph;
    fn();  // lazy set-up outside the capture
    sync(o.device);
    graph.capture(fn);
    return time([&] { graph.replay(); });
  };
  const double elt = static_cast<double>(at::elementSize(o.dtype));
  const double kv_bytes = 2.0 * static_cast<double>(B * Hkv * S * D) * elt;
  Json runs = Json::array();
  auto add = [&](const std::string& label, const std::vector<double>& secs, double reads,
                 double kv_read_bytes) {
    Json r = {{"label", label},
              {"seconds", secs},
              {"median_seconds", median_of(secs)},
              {"reads_fraction", reads},
              {"kv_bytes_fraction", kv_read_bytes / kv_bytes}};
    runs.push_back(r);
  };
#if TORCH_VERSION_MAJOR >= 2
  {
    at::Tensor qg = q.view({B, Hkv, H / Hkv, D});  // [B, Hkv, G, D]
    auto sdpa = [&] { at::scaled_dot_product_attention(qg, k, v, {}, 0.0, false, scale); };
    add("dense SDPA", time(sdpa), 1.0, kv_bytes);
    if (graphs) add("dense SDPA (graph)", time_graph(sdpa), 1.0, kv_bytes);
  }
#endif
  auto dense = [&] { decode_attend(q, cache, scale, nullptr); };
  add("dense paged", time(dense), 1.0, kv_bytes);
  if (graphs) add("dense paged (graph)", time_graph(dense), 1.0, kv_bytes);
  const double summary_bytes = 2.0 * static_cast<double>(B * Hkv * cache.full_pages() * D) * elt;
  for (double f : o.fractions) {
    const int64_t kb = std::max<int64_t>(1, std::llround(f * static_cast<double>(S)));
    const SparsitySpec token = SparsitySpec::uniform_top_k(1, H, kb);
    char label[64];
    // Pages chosen per query head, then one set per KV group (rule.h's `group`).
    for (bool group : {false, true}) {
      const LayerRule paged =
          token.with_selection(PageSelection{o.page, false, false, 1, group}).layer_rule(0);
      DecodeSelection sel;
      decode_attend(q, cache, scale, &paged, {}, &sel);
      // KV side: the union of each group's pages (keys), plus the summaries read.
      const double union_keys = sel.kv_reads(Hkv, o.page, S).sum().item<double>();
      const double reads =
          static_cast<double>(sel.reads.sum().item<int64_t>()) / static_cast<double>(B * H * S);
      const char* kind = group ? "group " : "";
      std::snprintf(label, sizeof label, "paged %stop-k %g%%", kind, 100 * f);
      const double paged_bytes = union_keys * 2.0 * static_cast<double>(D) * elt + summary_bytes;
      DecodeOptions dopt;
      dopt.kept_pages_per_warp = o.kept_pages_per_warp;
      auto sparse = [&] { decode_attend(q, cache, scale, &paged, dopt); };
      add(label, time(sparse), reads, paged_bytes);
      if (graphs) {
        std::snprintf(label, sizeof label, "paged %stop-k %g%% (graph)", kind, 100 * f);
        add(label, time_graph(sparse), reads, paged_bytes);
      }
    }
    SparseAttentionHook hook(token, 1, H, Hkv, S + 1);
    std::snprintf(label, sizeof label, "exact top-k %g%%", 100 * f);
    add(label, time([&] { attend(q, k, v, scale, 0, &hook); }), static_cast<double>(kb) / S,
        kv_bytes);
  }
  Json j;
  if (!layout.model.is_null()) j["model"] = layout.model;
  j["ctx"] = S;
  j["batch"] = B;
  j["heads"] = H;
  j["kv_heads"] = Hkv;
  j["head_dim"] = D;
  j["page"] = o.page;
  j["kept_pages_per_warp"] = o.kept_pages_per_warp;
  j["iters_per_repeat"] = o.iters;
  j["device"] = device_description(o.device);
  j["dtype"] = dtype_name(o.dtype);
  j["decode_kernels"] = decode_kernels_built();
  j["runs"] = runs;
  return j;
}

Json run_bench(const BenchOptions& o) {
  const int modes = int(o.forward) + int(o.gemm) + int(!o.load.empty()) +
                    int(!o.save_random.empty()) + int(o.decode || o.decode_model);
  if (modes > 1)
    throw UsageError(
        "csa-bench: --forward, --gemm, --load, --save-random and --decode exclude each other");
  if (o.decode || o.decode_model) {
    if (!o.model.empty() || o.mode != "dense" || !o.budgets.empty() || o.path != "auto")
      throw UsageError(
          "csa-bench --decode: --model, --mode, --budget and --path do not apply (budgets are "
          "--fraction of --ctx)");
    DecodeBenchOptions d;
    d.config = o.config, d.heads = o.heads, d.kv_heads = o.kv_heads, d.head_dim = o.head_dim;
    d.ctx = o.ctx.value_or(4096);
    d.batch = o.batch;
    d.page = o.page;
    d.kept_pages_per_warp = o.kept_pages_per_warp;
    if (!o.fractions.empty()) d.fractions = o.fractions;
    d.repeats = o.repeats.value_or(5);
    d.model = o.decode_model;
    d.device = parse_device(o.device);
    d.dtype = parse_dtype(o.dtype);
    return run_decode_bench(d);
  }
  if (!o.corpus.empty() && o.model.empty())
    throw UsageError("csa-bench: --corpus goes with --forward --model");
  if ((o.forward || o.gemm) && !o.model.empty()) {
    // A real model's forward at the evaluation's batching (or its GEMM peer).
    if (!o.config.empty())
      throw UsageError(
          "csa-bench: --model and --config exclude each other (--forward --config "
          "times a random model of that config)");
    ModelForwardBenchOptions f;
    f.model = o.model;
    f.corpus = o.corpus;
    f.ctx = o.ctx.value_or(2048);
    f.batch = o.batch;
    f.mode = o.mode;
    f.budget = o.budgets.empty() ? 64 : o.budgets.front();
    f.repeats = o.repeats.value_or(3);
    f.device = o.device;
    f.dtype = o.dtype;
    f.path = o.path;
    return o.gemm ? run_gemm_bench(f) : run_model_forward_bench(f);
  }
  if (o.gemm) throw UsageError("csa-bench --gemm needs --model");
  if (!o.model.empty()) throw UsageError("csa-bench: --model goes with --forward or --gemm");
  const at::Device device = parse_device(o.device);
  const at::ScalarType dtype = parse_dtype(o.dtype);
  if (modes == 1) {
    // Flags of the attention benchmark alone.
    std::string stray;
    if (o.heads) stray = "--heads";
    if (o.kv_heads) stray = "--kv-heads";
    if (o.head_dim) stray = "--head-dim";
    if (o.mode != "dense") stray = "--mode";
    if (!o.budgets.empty()) stray = "--budget";
    if (o.mass != 0.9) stray = "--mass";
    if (o.path != "auto") stray = "--path";
    if (!stray.empty())
      throw UsageError("csa-bench: " + stray +
                       " applies to the attention benchmark, not to --forward, --load or "
                       "--save-random (those take the model's own layout)");
  }
  if (!o.load.empty()) {
    if (o.ctx || o.batch != 1 || !o.stored_dtype.empty())
      throw UsageError("csa-bench --load: --ctx, --batch and --stored-dtype do not apply");
    LoadBenchOptions l;
    l.model = o.load;
    l.config = o.config;
    l.repeats = o.repeats.value_or(3);
    l.device = device;
    l.dtype = dtype;
    return run_load_bench(l);
  }
  if (!o.save_random.empty()) {
    if (o.ctx || o.batch != 1 || o.repeats || o.device != "cpu" || o.dtype != "float32")
      throw UsageError(
          "csa-bench --save-random: --ctx, --batch, --repeats, --device and --dtype do not "
          "apply (--stored-dtype sets the weights' dtype)");
    SaveRandomOptions s;
    s.config = o.config;
    s.dir = o.save_random;
    s.seed = o.seed;
    s.stored_dtype = parse_dtype(o.stored_dtype.empty() ? "bfloat16" : o.stored_dtype);
    return run_save_random(s);
  }
  if (o.forward) {
    ForwardBenchOptions f;
    f.config = o.config;
    f.batch = o.batch;
    f.tokens = o.ctx.value_or(128);
    f.repeats = o.repeats.value_or(3);
    f.seed = o.seed;
    f.stored_dtype = parse_dtype(o.stored_dtype.empty() ? "float32" : o.stored_dtype);
    f.device = device;
    f.dtype = dtype;
    return run_forward_bench(f);
  }
  if (!o.stored_dtype.empty() || o.seed != 0)
    throw UsageError(
        "csa-bench: --stored-dtype and --seed apply to random weights (--forward, "
        "--save-random), not to the attention benchmark");
  AttentionBenchOptions a;
  a.ctx = o.ctx.value_or(2048);
  a.batch = o.batch;
  a.config = o.config;
  a.heads = o.heads;
  a.kv_heads = o.kv_heads;
  a.head_dim = o.head_dim;
  a.mode = o.mode;
  a.budgets = o.budgets;
  a.mass = o.mass;
  a.path = o.path;
  a.repeats = o.repeats.value_or(5);
  a.device = device;
  a.dtype = dtype;
  return run_attention_bench(a);
}

}  // namespace csa
