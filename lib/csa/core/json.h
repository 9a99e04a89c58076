// JSON helpers over nlohmann::json: parsing with errors that name the file, typed field access,
// and deterministic dumping (insertion-ordered keys, fixed indentation).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "csa/core/error.h"

namespace csa {

using Json = nlohmann::ordered_json;

// Parses `text`; a syntax error is a FormatError naming `origin` and the byte position.
Json parse_json(std::string_view text, const std::string& origin);
// Reads and parses a JSON file (IoError / FormatError naming `path`); gzipped content (by its
// magic bytes, whatever the name) is inflated first.
Json read_json_file(const std::string& path);
// Two-space indented, trailing newline.
std::string dump_json(const Json& j);
// Writes JSON atomically to `path` ("-" = stdout), gzipped when `path` ends in ".gz".
void write_json_file(const std::string& path, const Json& j);

// Typed access that names `origin` and the field on error.
class JsonReader {
 public:
  JsonReader(const Json& j, std::string origin, std::string prefix = "")
      : j_(j), origin_(std::move(origin)), prefix_(std::move(prefix)) {}

  bool has(const std::string& key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  const Json& raw() const { return j_; }
  const std::string& origin() const { return origin_; }
  std::string field_name(const std::string& key) const { return prefix_ + key; }

  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_double(const std::string& key) const;
  double get_double(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  bool get_bool(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  JsonReader child(const std::string& key) const;  // an object field
  std::optional<JsonReader> optional_child(const std::string& key) const;

  [[noreturn]] void fail(const std::string& key, const std::string& problem) const;

 private:
  const Json& at(const std::string& key) const;
  const Json& j_;
  std::string origin_, prefix_;
};

}  // namespace csa
