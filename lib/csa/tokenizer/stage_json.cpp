#include "csa/tokenizer/stage_json.h"

#include "csa/core/utf8.h"

namespace csa::tok {

std::string stage_type(const Json& j, const std::string& origin, const std::string& field) {
  if (!j.is_object()) throw FormatError(origin + ": field '" + field + "' must be an object");
  return JsonReader(j, origin, field + ".").get_string("type");
}

void throw_unsupported_stage(const std::string& kind, const std::string& type,
                             const std::string& origin, const std::string& field,
                             const std::string& supported) {
  throw UnsupportedError(origin + ": " + kind + " '" + type + "' (field '" + field +
                         "') is not supported; supported: " + supported);
}

const Json& array_field(const Json& j, const std::string& key, const std::string& origin,
                        const std::string& field) {
  if (!j.contains(key) || !j.at(key).is_array())
    throw FormatError(origin + ": field '" + field + "." + key + "' must be an array");
  return j.at(key);
}

std::string char_field(const JsonReader& r, const std::string& key) {
  const std::string s = r.get_string(key);
  if (s.empty() || find_invalid_utf8(s) ||
      utf8_sequence_length(static_cast<unsigned char>(s[0])) != s.size())
    r.fail(key, "must be a single character, got '" + s + "'");
  return s;
}

PrependScheme parse_prepend_scheme(const JsonReader& r) {
  if (r.has("prepend_scheme")) {
    const std::string s = r.get_string("prepend_scheme");
    if (s == "first") return PrependScheme::kFirst;
    if (s == "always") return PrependScheme::kAlways;
    if (s == "never") return PrependScheme::kNever;
    r.fail("prepend_scheme", "must be first, always or never, got '" + s + "'");
  }
  return r.get_bool("add_prefix_space", true) ? PrependScheme::kAlways : PrependScheme::kNever;
}

}  // namespace csa::tok
