#include "csa/core/json.h"

#include "csa/core/file.h"

namespace csa {

Json parse_json(std::string_view text, const std::string& origin) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    throw FormatError(origin + ": not valid JSON (byte " + std::to_string(e.byte) + "): " +
                      e.what());
  }
}

Json read_json_file(const std::string& path) { return parse_json(read_file(path), path); }

std::string dump_json(const Json& j) {
  // Invalid UTF-8 inside strings is replaced rather than thrown (all our strings are UTF-8).
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void write_json_file(const std::string& path, const Json& j) {
  write_file_atomic(path, dump_json(j));
}

void JsonReader::fail(const std::string& key, const std::string& problem) const {
  throw FormatError(origin_ + ": field '" + field_name(key) + "' " + problem);
}

const Json& JsonReader::at(const std::string& key) const {
  if (!j_.is_object()) throw FormatError(origin_ + ": expected a JSON object at '" + prefix_ + "'");
  if (!has(key)) fail(key, "is missing");
  return j_.at(key);
}

int64_t JsonReader::get_int(const std::string& key) const {
  const Json& v = at(key);
  if (v.is_number_integer() || v.is_number_unsigned()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
  }
  fail(key, "must be an integer, got " + v.dump());
}

int64_t JsonReader::get_int(const std::string& key, int64_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}

double JsonReader::get_double(const std::string& key) const {
  const Json& v = at(key);
  if (!v.is_number()) fail(key, "must be a number, got " + v.dump());
  return v.get<double>();
}

double JsonReader::get_double(const std::string& key, double fallback) const {
  return has(key) ? get_double(key) : fallback;
}

bool JsonReader::get_bool(const std::string& key) const {
  const Json& v = at(key);
  if (!v.is_boolean()) fail(key, "must be true or false, got " + v.dump());
  return v.get<bool>();
}

bool JsonReader::get_bool(const std::string& key, bool fallback) const {
  return has(key) ? get_bool(key) : fallback;
}

std::string JsonReader::get_string(const std::string& key) const {
  const Json& v = at(key);
  if (!v.is_string()) fail(key, "must be a string, got " + v.dump());
  return v.get<std::string>();
}

std::string JsonReader::get_string(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}

JsonReader JsonReader::child(const std::string& key) const {
  const Json& v = at(key);
  if (!v.is_object()) fail(key, "must be an object, got " + v.dump());
  return JsonReader(v, origin_, prefix_ + key + ".");
}

std::optional<JsonReader> JsonReader::optional_child(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return child(key);
}

}  // namespace csa
