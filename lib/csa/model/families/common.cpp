#include "csa/model/families/common.h"

#include "csa/core/error.h"

namespace csa::families {

RopeConfig parse_rope(const JsonReader& r, int64_t head_dim, double default_partial) {
  RopeConfig rope;
  std::optional<JsonReader> params = r.optional_child("rope_parameters");
  std::optional<JsonReader> scaling = r.optional_child("rope_scaling");
  // Newer layout: everything in rope_parameters. Older: top-level fields + rope_scaling.
  const JsonReader* s = params ? &*params : (scaling ? &*scaling : nullptr);
  std::string type_field = "rope_scaling.type";
  std::string type = "default";
  if (s != nullptr) {
    if (s->has("rope_type")) {
      type = s->get_string("rope_type");
      type_field = s->field_name("rope_type");
    } else if (s->has("type")) {
      type = s->get_string("type");
      type_field = s->field_name("type");
    }
  }
  if (params && params->has("rope_theta"))
    rope.theta = params->get_double("rope_theta");
  else if (r.has("rope_theta"))
    rope.theta = r.get_double("rope_theta");
  else if (r.has("rotary_emb_base"))
    rope.theta = r.get_double("rotary_emb_base");

  double partial = default_partial;
  if (params && params->has("partial_rotary_factor"))
    partial = params->get_double("partial_rotary_factor");
  else if (r.has("partial_rotary_factor"))
    partial = r.get_double("partial_rotary_factor");
  else if (r.has("rotary_pct"))
    partial = r.get_double("rotary_pct");
  if (partial <= 0 || partial > 1)
    throw FormatError(r.origin() + ": partial rotary factor " + std::to_string(partial) +
                      " must be in (0, 1]");
  // transformers: dim = int(head_dim * partial_rotary_factor)
  rope.rotary_dim = static_cast<int64_t>(static_cast<double>(head_dim) * partial);

  if (type == "default") {
    rope.type = RopeType::kDefault;
  } else if (type == "linear") {
    rope.type = RopeType::kLinear;
    rope.factor = s->get_double("factor");
    if (rope.factor <= 0) s->fail("factor", "must be positive");
  } else if (type == "llama3") {
    rope.type = RopeType::kLlama3;
    rope.factor = s->get_double("factor");
    rope.low_freq_factor = s->get_double("low_freq_factor");
    rope.high_freq_factor = s->get_double("high_freq_factor");
    rope.original_max_position = s->get_int("original_max_position_embeddings");
    if (rope.factor <= 0 || rope.original_max_position <= 0 ||
        rope.high_freq_factor <= rope.low_freq_factor)
      throw FormatError(
          r.origin() +
          ": llama3 rope parameters are inconsistent (need factor > 0, "
          "original_max_position_embeddings > 0, high_freq_factor > low_freq_factor)");
  } else {
    throw UnsupportedError(r.origin() + ": field '" + type_field + "' = '" + type +
                           "' is not supported (supported rope types: default, linear, llama3)");
  }
  return rope;
}

Activation parse_activation(const JsonReader& r, const std::string& field) {
  std::string act = r.get_string(field);
  if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast")
    return Activation::kGeluTanh;
  if (act == "gelu") return Activation::kGeluErf;
  if (act == "silu" || act == "swish") return Activation::kSilu;
  if (act == "relu") return Activation::kRelu;
  throw UnsupportedError(r.origin() + ": field '" + field + "' = '" + act +
                         "' is not supported (supported: gelu, gelu_new, gelu_pytorch_tanh, "
                         "gelu_fast, silu, relu)");
}

void refuse_sliding_window(const JsonReader& r) {
  if (r.get_bool("use_sliding_window", false))
    throw UnsupportedError(r.origin() +
                           ": field 'use_sliding_window' = true: sliding-window "
                           "attention layers are not supported");
  if (r.has("layer_types")) {
    const Json& lt = r.raw().at("layer_types");
    if (!lt.is_array()) r.fail("layer_types", "must be an array");
    for (size_t i = 0; i < lt.size(); ++i) {
      if (!lt[i].is_string() || lt[i].get<std::string>() != "full_attention")
        throw UnsupportedError(r.origin() + ": field 'layer_types[" + std::to_string(i) + "]' = " +
                               lt[i].dump() + ": only full_attention layers are supported");
    }
  }
}

}  // namespace csa::families
