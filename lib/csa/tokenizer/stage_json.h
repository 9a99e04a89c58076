// Reading the JSON objects of tokenizer.json stages: the "type" tag and typed fields, with
// errors that name the file and the JSON path.
#pragma once

#include <string>
#include <vector>

#include "csa/core/error.h"
#include "csa/core/json.h"

namespace csa::tok {

// The stage's "type" (FormatError if `j` is not an object with a string "type").
std::string stage_type(const Json& j, const std::string& origin, const std::string& field);

[[noreturn]] void throw_unsupported_stage(const std::string& kind, const std::string& type,
                                          const std::string& origin, const std::string& field,
                                          const std::string& supported);

// The array field `key` of object `j` (FormatError naming origin and field if missing or not an
// array).
const Json& array_field(const Json& j, const std::string& key, const std::string& origin,
                        const std::string& field);

// A one-character string field (Metaspace's replacement, Strip's content), as UTF-8.
std::string char_field(const JsonReader& r, const std::string& key);

// Metaspace's prepend_scheme (pre-tokenizer and decoder); the legacy add_prefix_space maps to
// always / never.
enum class PrependScheme { kFirst, kAlways, kNever };
PrependScheme parse_prepend_scheme(const JsonReader& r);

}  // namespace csa::tok
