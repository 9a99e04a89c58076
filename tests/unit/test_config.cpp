#include "csa/core/error.h"
#include "csa/model/config.h"
#include "csa/model/family.h"
#include "csa/model/rope.h"
#include "model_factory.h"

using namespace csa;

TEST_CASE("every registered family parses its tiny config and lists consistent tensors", "[unit]") {
  for (const FamilySpec* f : registered_families()) {
    INFO(f->name);
    Json cfg = test::tiny_config(f->model_types.front());
    ModelConfig c = parse_model_config(cfg, "cfg");
    CHECK(c.family == f->name);
    auto slots = f->tensors(c);
    CHECK(slots.size() > 4);
    for (const auto& s : slots) CHECK(!s.shape.empty());
  }
}

TEST_CASE("older and newer config layouts describe the same rotary settings", "[unit]") {
  Json older = {{"model_type", "llama"},
                {"num_hidden_layers", 1},
                {"num_attention_heads", 2},
                {"hidden_size", 32},
                {"intermediate_size", 8},
                {"max_position_embeddings", 64},
                {"vocab_size", 10},
                {"hidden_act", "silu"},
                {"rope_theta", 500000.0},
                {"torch_dtype", "bfloat16"},
                {"rope_scaling",
                 {{"rope_type", "llama3"},
                  {"factor", 8.0},
                  {"low_freq_factor", 1.0},
                  {"high_freq_factor", 4.0},
                  {"original_max_position_embeddings", 16}}}};
  Json newer = older;
  newer.erase("rope_theta");
  newer.erase("rope_scaling");
  newer.erase("torch_dtype");
  newer["dtype"] = "bfloat16";
  newer["rope_parameters"] = {{"rope_type", "llama3"},   {"rope_theta", 500000.0},
                              {"factor", 8.0},           {"low_freq_factor", 1.0},
                              {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 16}};
  ModelConfig a = parse_model_config(older, "old"), b = parse_model_config(newer, "new");
  CHECK(a.rope.type == RopeType::kLlama3);
  CHECK(b.rope.type == RopeType::kLlama3);
  CHECK(a.rope.theta == b.rope.theta);
  CHECK(a.rope.original_max_position == 16);
  CHECK(a.stored_dtype == "bfloat16");
  CHECK(b.stored_dtype == "bfloat16");
  CHECK(rope_inv_freq(a.rope).equal(rope_inv_freq(b.rope)));
}

TEST_CASE("llama3 inv_freq follows the three bands of _compute_llama3_parameters", "[unit]") {
  RopeConfig r;
  r.type = RopeType::kLlama3;
  r.theta = 10000;
  r.rotary_dim = 16;
  r.factor = 8;
  r.low_freq_factor = 1;
  r.high_freq_factor = 4;
  r.original_max_position = 32;  // high-freq wavelen < 8, low-freq wavelen > 32
  at::Tensor scaled = rope_inv_freq(r);
  r.type = RopeType::kDefault;
  at::Tensor base = rope_inv_freq(r);
  // Hand-computed: base[i] = 10000^(-2i/16); wavelen = 2*pi/base.
  CHECK(base[1].item<double>() == Approx(std::pow(10000.0, -2.0 / 16)).epsilon(1e-6));
  CHECK(scaled[0].item<double>() == Approx(base[0].item<double>()));  // wavelen 6.3: kept
  CHECK(scaled[7].item<double>() == Approx(base[7].item<double>() / 8).epsilon(1e-6));  // low
  double wl = 2 * M_PI / base[1].item<double>();  // 19.9: medium band, smoothed
  double smooth = (32.0 / wl - 1) / (4 - 1);
  double expect = (1 - smooth) * base[1].item<double>() / 8 + smooth * base[1].item<double>();
  CHECK(scaled[1].item<double>() == Approx(expect).epsilon(1e-5));
}

TEST_CASE("rotary on float32 CPU gives the tensor formula's bits, partial and strided", "[unit]") {
  at::manual_seed(23);
  for (int64_t rd : {int64_t(16), int64_t(8)}) {  // full and partial rotary on D = 16
    RopeConfig r;
    r.theta = 10000;
    r.rotary_dim = rd;
    RopeTable table(r, 64, at::kCPU);
    // A strided view like the decoder's: q of a fused [B, T, 3 * H * D] projection.
    at::Tensor qkv = at::randn({2, 20, 3 * 3 * 16});
    at::Tensor x = qkv.narrow(-1, 0, 3 * 16).view({2, 20, 3, 16}).transpose(1, 2);  // [B, H, T, D]
    at::Tensor got = table.apply(x, 7);
    // transformers: x * cos + rotate_half(x) * sin on the first rd dims.
    at::Tensor inv = rope_inv_freq(r);
    at::Tensor freqs = at::arange(64, at::kLong).to(at::kFloat).unsqueeze(1) * inv.unsqueeze(0);
    at::Tensor emb = at::cat({freqs, freqs}, -1).narrow(0, 7, 20);  // [T, rd]
    at::Tensor xr = x.narrow(-1, 0, rd);
    at::Tensor rot = at::cat({xr.narrow(-1, rd / 2, rd / 2).neg(), xr.narrow(-1, 0, rd / 2)}, -1);
    at::Tensor want = xr * emb.cos() + rot * emb.sin();
    if (rd < 16) want = at::cat({want, x.narrow(-1, rd, 16 - rd)}, -1);
    CHECK(got.equal(want));
  }
}

TEST_CASE("GPT-NeoX rotary_pct, Qwen2 bias flags, explicit head_dim", "[unit]") {
  ModelConfig neox = parse_model_config(test::tiny_config("gpt_neox"), "cfg");
  CHECK(neox.rope.rotary_dim == 4);  // int(8 * 0.5)
  CHECK(neox.parallel_residual);
  Json q = test::tiny_config("qwen2");
  ModelConfig qwen = parse_model_config(q, "cfg");
  CHECK(qwen.qkv_bias);
  CHECK_FALSE(qwen.out_bias);
  CHECK(qwen.group_size() == 2);
  Json l = test::tiny_config("llama");
  l["head_dim"] = 12;
  ModelConfig llama = parse_model_config(l, "cfg");
  CHECK(llama.head_dim == 12);
  CHECK(llama.qkv_rows() == (4 + 2 * 2) * 12);
}

TEST_CASE("unsupported or inconsistent configs are refused naming the field", "[unit]") {
  auto fails = [](Json cfg, const std::string& needle) {
    INFO(cfg.dump());
    CHECK_THROWS_WITH(parse_model_config(cfg, "config.json"),
                      Catch::Contains("config.json") && Catch::Contains(needle));
  };
  Json base = test::tiny_config("llama");
  fails(Json{{"model_type", "mamba"}}, "model_type 'mamba' is not supported");
  fails(Json{{"n_layer", 2}}, "'model_type' is missing");
  Json c = base;
  c["rope_scaling"] = {{"type", "yarn"}, {"factor", 2.0}};
  fails(c, "rope_scaling.type' = 'yarn'");
  c = base;
  c["rope_parameters"] = {{"rope_type", "dynamic"}, {"factor", 2.0}};
  fails(c, "rope_parameters.rope_type' = 'dynamic'");
  c = test::tiny_config("qwen2");
  c["use_sliding_window"] = true;
  fails(c, "use_sliding_window");
  c = test::tiny_config("qwen2");
  c["layer_types"] = {"full_attention", "sliding_attention"};
  fails(c, "layer_types[1]");
  c = base;
  c["num_key_value_heads"] = 3;
  fails(c, "num_key_value_heads");
  c = base;
  c["hidden_act"] = "mish";
  fails(c, "hidden_act");
  c = base;
  c.erase("vocab_size");
  fails(c, "'vocab_size' is missing");
  c = base;
  c["hidden_size"] = "sixteen";
  fails(c, "'hidden_size' must be an integer");
  c = test::tiny_config("gpt2");
  c["scale_attn_by_inverse_layer_idx"] = true;
  fails(c, "scale_attn_by_inverse_layer_idx");
}
