#include "csa/core/json.h"

#include <cmath>
#include <cstdint>

#include "csa/core/compress.h"
#include "csa/core/file.h"
#include "csa/core/profile.h"

namespace csa {
namespace {

// nlohmann's parser is iterative, but copying, dumping and comparing a value recurse once per
// nesting level, so a file of 100k '[' would exhaust the stack later on. No csa file nests
// anywhere near this deep.
constexpr int kMaxJsonDepth = 512;

// Byte offset where `text` first nests deeper than kMaxJsonDepth (strings skipped), or npos.
size_t too_deep_at(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return std::string_view::npos;
}

}  // namespace

Json parse_json(std::string_view text, const std::string& origin) {
  if (const size_t at = too_deep_at(text); at != std::string_view::npos)
    throw FormatError(origin + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                      " levels (byte " + std::to_string(at) + ")");
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    throw FormatError(origin + ": not valid JSON (byte " + std::to_string(e.byte) +
                      "): " + e.what());
  } catch (const nlohmann::json::exception& e) {  // out_of_range.406: a number like 1e999
    throw FormatError(origin + ": not valid JSON: " + e.what());
  }
}

// A gzipped JSON input inflates to at most this (csa's largest JSON, a swept policy with its need
// curves, is about 1 MB).
constexpr size_t kMaxJsonBytes = size_t(1) << 30;

Json read_json_file(const std::string& path) {
  const std::string text = inflate_if_gzip(read_file(path), kMaxJsonBytes, input_label(path));
  if (text.find_first_not_of(" \t\r\n") == std::string::npos)
    throw FormatError(input_label(path) + ": empty, expected JSON" +
                      (is_stdin_path(path) || !is_regular_file(path)
                           ? " (did the command writing into the pipe fail?)"
                           : ""));
  return parse_json(text, input_label(path));
}

std::string dump_json(const Json& j) {
  // Invalid UTF-8 inside strings is replaced rather than thrown (all our strings are UTF-8).
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void write_json_file(const std::string& path, const Json& j) {
  CSA_PROFILE_SCOPE("write");
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  write_file_atomic(path, gz ? gzip_bytes(dump_json(j)) : dump_json(j));
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
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      fail(key, "is out of range, got " + v.dump());
    return v.get<int64_t>();
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    // 2.0 reads as 2; the range check comes first (converting 1e300 to int64 is undefined).
    const double d = v.get<double>();
    if (d >= -9.2e18 && d <= 9.2e18 && d == std::trunc(d)) return static_cast<int64_t>(d);
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
