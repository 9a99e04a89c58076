// Config-parsing pieces shared by the family files: rotary settings in both config layouts,
// activations, and the sliding-window guard.
#pragma once

#include "csa/core/json.h"
#include "csa/model/config.h"

namespace csa::families {

// Reads rotary settings from either layout:
//   newer:  "rope_parameters": {"rope_type", "rope_theta", "partial_rotary_factor", "factor", ...}
//   older:  "rope_theta" / "rotary_emb_base", "rope_scaling": {"type"|"rope_type", "factor", ...},
//           "partial_rotary_factor" / "rotary_pct".
// `default_partial` applies when no partial factor is given (GPT-NeoX: 0.25, others 1.0).
RopeConfig parse_rope(const JsonReader& r, int64_t head_dim, double default_partial);

// hidden_act / activation_function -> Activation; anything else is an UnsupportedError.
Activation parse_activation(const JsonReader& r, const std::string& field);

// Sliding-window attention (Qwen2 use_sliding_window, layer_types other than full_attention)
// changes the function; csa refuses it rather than computing a different model.
void refuse_sliding_window(const JsonReader& r);

}  // namespace csa::families
