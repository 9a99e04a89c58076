// The paged decode kernels (decode_cuda_kernel.cu) against decode.h's tensor reference, which the
// unit tier proves equal to the explicit path's page rule: integer-valued queries and keys make
// every bound exact, so the kept pages and reads must be identical (ties included); outputs agree
// within float32 / half tolerances. Dense decoding over every page too.
#include <c10/core/GradMode.h>

#include "csa/attention/decode.h"
#include "csa/attention/sparse_hook.h"
#include "csa/attention/spec.h"
#include "csa/model/decoder.h"
#include "csa/model/model.h"
#include "support.h"

using namespace csa;

TEST_CASE("CUDA paged decode equals the reference: pages, reads, outputs", "[.][gpu]") {
  REQUIRE(at::hasCUDA());
  REQUIRE(decode_kernels_built());
  at::manual_seed(31);
  struct Case {
    int64_t B, H, Hkv, D, S, P;
  };
  const std::vector<Case> cases = {{1, 4, 1, 64, 1, 16},
                                   {2, 8, 2, 64, 17, 16},
                                   {1, 32, 8, 64, 5000, 16},
                                   {2, 12, 2, 128, 3001, 32},
                                   {1, 8, 1, 80, 777, 8},
                                   {1, 4, 4, 64, 40000, 64},
                                   {3, 6, 2, 128, 100, 1},
                                   {1, 8, 8, 256, 2049, 16},
                                   // fewer lanes per page than heads (bounds without the fold);
                                   // a long cache: select's candidates over several rounds
                                   {1, 8, 1, 16, 300, 4},
                                   {1, 8, 2, 64, 70000, 16}};
  for (const Case& c : cases) {
    for (at::ScalarType dt : {at::kFloat, at::kBFloat16, at::kHalf}) {
      INFO("B" << c.B << " H" << c.H << " Hkv" << c.Hkv << " D" << c.D << " S" << c.S << " P" << c.P
               << " " << at::toString(dt));
      auto opts = at::TensorOptions().device(at::kCUDA).dtype(dt);
      // Small integers are exact in every dtype; scale 1/8 keeps the softmax in range.
      at::Tensor q = at::randint(-2, 3, {c.B, c.H, 1, c.D}, opts);
      // The last head of a larger group scores every page alike: the select's all-equal path
      // (ties only: the newest pages win).
      if (c.H >= 8) q.select(1, c.H - 1).zero_();
      at::Tensor k = at::randint(-2, 3, {c.B, c.Hkv, c.S, c.D}, opts);
      at::Tensor v = at::randn({c.B, c.Hkv, c.S, c.D}, opts);
      PagedKvCache cache(c.P);
      cache.append(k.narrow(2, 0, c.S / 3), v.narrow(2, 0, c.S / 3));
      for (int64_t t = c.S / 3; t < c.S; t += std::max<int64_t>(1, c.S / 7)) {
        const int64_t n = std::min(std::max<int64_t>(1, c.S / 7), c.S - t);
        cache.append(k.narrow(2, t, n), v.narrow(2, t, n));
      }
      REQUIRE(cache.length() == c.S);
      BudgetSchedule sched;
      sched.band_start = {0, 1000};
      for (int64_t h = 0; h < c.H; ++h)
        sched.k.push_back(std::vector<std::vector<int64_t>>{
            {1, 100}, {40, 4000}, {1000000, 7}, {17, 17}, {300, 33}}[static_cast<size_t>(h % 5)]);
      const LayerRule rule = SparsitySpec::top_k(std::vector<BudgetSchedule>{sched}, "r")
                                 .with_selection(PageSelection{c.P, false})
                                 .layer_rule(0);
      // Pages scored between the bound and the centre (rule.h's spread): with small-integer
      // keys every score is a multiple of 1/8, exact on both devices, ties included.
      const LayerRule spread_rule = SparsitySpec::top_k(std::vector<BudgetSchedule>{sched}, "r")
                                        .with_selection(PageSelection{c.P, false, false, 0.25})
                                        .layer_rule(0);
      // One page set per KV group (rule.h's `group`), with the bound and with a spread.
      const LayerRule group_rule = SparsitySpec::top_k(std::vector<BudgetSchedule>{sched}, "r")
                                       .with_selection(PageSelection{c.P, false, false, 1, true})
                                       .layer_rule(0);
      const LayerRule group_spread =
          SparsitySpec::top_k(std::vector<BudgetSchedule>{sched}, "r")
              .with_selection(PageSelection{c.P, false, false, 0.5, true})
              .layer_rule(0);
      const double tol = dt == at::kFloat ? 1e-5 : 2e-2;
      for (const LayerRule* r : {&rule, &spread_rule, &group_rule, &group_spread,
                                 static_cast<const LayerRule*>(nullptr)}) {
        DecodeSelection got, want;
        DecodeOptions kernel, reference;
        reference.allow_kernel = false;
        at::Tensor out = decode_attend(q, cache, 0.125, r, kernel, &got);
        at::Tensor ref = decode_attend(q, cache, 0.125, r, reference, &want);
        CHECK(at::equal(got.keep.cpu(), want.keep.cpu()));
        CHECK(at::equal(got.reads.cpu(), want.reads.cpu()));
        CHECK_TENSOR_CLOSE(out.to(at::kFloat).cpu(), ref.to(at::kFloat).cpu(), tol);
        // Deterministic: the same call gives the same bits.
        CHECK(at::equal(out, decode_attend(q, cache, 0.125, r, kernel)));
        // Any split count gives the same output within rounding.
        DecodeOptions one, many;
        one.splits = 1;
        many.kept_pages_per_warp = 1;  // automatic splits sized for a page per warp
        CHECK_TENSOR_CLOSE(decode_attend(q, cache, 0.125, r, one).to(at::kFloat).cpu(),
                           ref.to(at::kFloat).cpu(), tol);
        CHECK_TENSOR_CLOSE(decode_attend(q, cache, 0.125, r, many).to(at::kFloat).cpu(),
                           ref.to(at::kFloat).cpu(), tol);
        // The position read on the device (grids sized from the capacity, as a CUDA graph
        // replays them): the same pages and reads, the output within rounding, deterministic.
        // Shapes the kernels do not take refuse it.
        DecodeOptions dev;
        dev.position = at::full({1}, c.S - 1, q.options().dtype(at::kLong));
        if (!decode_kernels_take(dt, c.H, c.Hkv, c.D, c.P, cache.capacity(), r)) {
          CHECK_THROWS_AS(decode_attend(q, cache, 0.125, r, dev), UsageError);
          continue;
        }
        DecodeSelection got_dev;
        at::Tensor out_dev = decode_attend(q, cache, 0.125, r, dev, &got_dev);
        CHECK(at::equal(got_dev.keep.cpu(), want.keep.cpu()));
        CHECK(at::equal(got_dev.reads.cpu(), want.reads.cpu()));
        CHECK_TENSOR_CLOSE(out_dev.to(at::kFloat).cpu(), ref.to(at::kFloat).cpu(), tol);
        CHECK(at::equal(out_dev, decode_attend(q, cache, 0.125, r, dev)));
      }
    }
  }
}

TEST_CASE("CUDA paged append: one kernel per position equals the tensor path, summaries exact",
          "[.][gpu]") {
  REQUIRE(at::hasCUDA());
  REQUIRE(decode_kernels_built());
  at::manual_seed(32);
  for (at::ScalarType dt : {at::kFloat, at::kBFloat16, at::kHalf}) {
    for (int64_t P : {1, 4, 16}) {
      INFO(at::toString(dt) << " page " << P);
      auto opts = at::TensorOptions().device(at::kCUDA).dtype(dt);
      const int64_t B = 2, Hkv = 3, S = 53, D = 64;
      // Strided like the decoder's views of its qkv projection: [B, T, Hkv, D] transposed.
      at::Tensor k = at::randn({B, S, Hkv, D}, opts).transpose(1, 2);
      at::Tensor v = at::randn({B, S, Hkv, D}, opts).transpose(1, 2);
      PagedKvCache bulk(P), step(P), at_dev(P);
      bulk.append(k.narrow(2, 0, 7).contiguous(), v.narrow(2, 0, 7).contiguous());
      bulk.append(k.narrow(2, 7, S - 7).contiguous(), v.narrow(2, 7, S - 7).contiguous());
      step.append(k.narrow(2, 0, 7), v.narrow(2, 0, 7));
      at_dev.reserve(S, k);
      at_dev.append(k.narrow(2, 0, 7), v.narrow(2, 0, 7));
      for (int64_t t = 7; t < S; ++t) {
        step.append(k.narrow(2, t, 1), v.narrow(2, t, 1));  // the kernel (host position)
        at_dev.append_at(k.narrow(2, t, 1), v.narrow(2, t, 1),
                         at::full({1}, t, opts.dtype(at::kLong)));
      }
      for (const PagedKvCache* c : {&step, &at_dev}) {
        REQUIRE(c->length() == S);
        CHECK(at::equal(c->keys(), bulk.keys()));
        CHECK(at::equal(c->values(), bulk.values()));
        CHECK(at::equal(c->kmin(), bulk.kmin()));
        CHECK(at::equal(c->kmax(), bulk.kmax()));
      }
      // No room: a clear error, nothing written.
      PagedKvCache full(P);
      full.reserve(P, k);
      full.append(k.narrow(2, 0, P), v.narrow(2, 0, P));
      CHECK_THROWS_AS(full.append_at(k.narrow(2, 0, 1), v.narrow(2, 0, 1),
                                     at::full({1}, P, opts.dtype(at::kLong))),
                      UsageError);
      CHECK(full.length() == P);
    }
  }
}

TEST_CASE("CUDA graph decode steps equal eager steps: logits and greedy tokens", "[.][gpu]") {
  REQUIRE(at::hasCUDA());
  REQUIRE(decode_kernels_built());
  c10::NoGradGuard no_grad;
  for (const char* name : {"gpt2-tiny", "llama-tiny", "qwen2-tiny"}) {
    for (at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
      INFO(name << " " << at::toString(dt));
      LoadOptions lo;
      lo.device = at::kCUDA;
      lo.dtype = dt;
      Model model = load_model(test::fixtures_dir() + "/models/" + name, lo);
      const ModelConfig& c = model.config;
      Decoder decoder(model);
      at::manual_seed(43);
      const int64_t T = std::min<int64_t>(48, c.n_ctx), prompt = 9;
      at::Tensor ids = at::randint(0, c.vocab_size, {2, T}, at::kLong);
      SparsitySpec spec = SparsitySpec::uniform_top_k(c.n_layer, c.n_head, 6)
                              .with_selection(PageSelection{4, false});
      for (bool sparse : {false, true}) {
        INFO("sparse " << sparse);
        SparseAttentionHook hook(spec, c.n_layer, c.n_head, c.n_head_kv, c.n_ctx);
        hook.set_counting(false);
        AttentionHook* h = sparse ? &hook : nullptr;
        KvCache eager, graphed;
        eager.page = graphed.page = 4;
        graphed.graphs = true;
        decoder.forward(ids.narrow(1, 0, prompt), h, &eager);
        decoder.forward(ids.narrow(1, 0, prompt), h, &graphed);
        for (int64_t t = prompt; t < T; ++t) {
          INFO("step " << t);
          at::Tensor want = decoder.forward(ids.narrow(1, t, 1), h, &eager);
          at::Tensor got = decoder.forward(ids.narrow(1, t, 1), h, &graphed);
          CHECK_TENSOR_CLOSE(got.cpu(), want.cpu(), dt == at::kFloat ? 1e-4 : 5e-2);
          if (dt == at::kFloat) CHECK(at::equal(got.argmax(-1), want.argmax(-1)));
        }
        CHECK(graphed.graph != nullptr);  // the steps did run through a graph
        CHECK(graphed.length == T);
        CHECK(graphed.paged[0].length() == T);
        CHECK_TENSOR_CLOSE(graphed.paged[0].keys().to(at::kFloat).cpu(),
                           eager.paged[0].keys().to(at::kFloat).cpu(),
                           dt == at::kFloat ? 1e-5 : 2e-2);
      }
    }
  }
}
