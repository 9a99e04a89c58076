#include "csa/tokenizer/hf_files.h"

#include <map>

#include "csa/core/error.h"
#include "csa/core/json.h"

namespace csa::tok {
namespace {

// "bos_token": "<s>" | {"content": "<s>", ...} | null
std::optional<std::string> token_name(const Json& config, const char* key,
                                      const std::string& origin) {
  if (!config.contains(key) || config.at(key).is_null()) return std::nullopt;
  const Json& v = config.at(key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v.at("content").is_string())
    return v.at("content").get<std::string>();
  throw FormatError(origin + ": field '" + key + "' must be a string, an AddedToken object or " +
                    "null, got " + v.dump());
}

std::vector<AddedToken> added_tokens_decoder(const Json& config, const std::string& origin) {
  std::vector<AddedToken> out;
  if (!config.contains("added_tokens_decoder")) return out;
  const Json& table = config.at("added_tokens_decoder");
  if (!table.is_object())
    throw FormatError(origin + ": field 'added_tokens_decoder' must be an object");
  std::map<int64_t, AddedToken> by_id;
  for (auto it = table.begin(); it != table.end(); ++it) {
    const std::string field = "added_tokens_decoder." + it.key();
    int64_t id = -1;
    try {
      id = std::stoll(it.key());
    } catch (const std::exception&) {
      throw FormatError(origin + ": field '" + field + "': the key must be a token id");
    }
    if (!it.value().is_object())
      throw FormatError(origin + ": field '" + field + "' must be an object");
    const JsonReader r(it.value(), origin, field + ".");
    by_id[id] = read_added_token(r);
  }
  for (auto& [id, t] : by_id) out.push_back(std::move(t));
  return out;
}

std::optional<int32_t> first_known(const HfComponents& c, const std::vector<std::string>& names) {
  for (const std::string& n : names) {
    if (auto id = c.added.token_to_id(n)) return id;
    if (auto id = c.model->token_to_id(n)) return id;
  }
  return std::nullopt;
}

}  // namespace

nlohmann::json parse_plain_json(std::string_view text, const std::string& origin) {
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    throw FormatError(origin + ": not valid JSON (byte " + std::to_string(e.byte) +
                      "): " + e.what());
  }
}

std::unordered_map<std::string, int32_t> parse_vocab_object(const nlohmann::json& j,
                                                            const std::string& origin) {
  if (!j.is_object()) throw FormatError(origin + ": the vocabulary must be a JSON object");
  std::unordered_map<std::string, int32_t> vocab;
  vocab.reserve(j.size());
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& v = it.value();
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      throw FormatError(origin + ": token '" + it.key() + "' has id " + v.dump() +
                        ", not an integer in [0, 2^31)");
    vocab.emplace(it.key(), v.get<int32_t>());
  }
  return vocab;
}

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    const size_t next = end == std::string_view::npos ? text.size() : end + 1;
    if (end == std::string_view::npos) end = text.size();
    size_t stop = end;
    if (end != text.size() && stop > start && text[stop - 1] == '\r') --stop;
    lines.emplace_back(text.substr(start, stop - start));
    start = next;
  }
  return lines;
}

std::vector<std::pair<std::string, std::string>> parse_merge_lines(
    const std::vector<std::string>& lines, const std::string& origin) {
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(lines.size());
  for (const std::string& line : lines) {
    if (line.rfind("#version", 0) == 0) continue;
    const size_t space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
      throw FormatError(origin + ": merge " + std::to_string(merges.size() + 1) + " ('" + line +
                        "') is not two tokens separated by one space");
    merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  return merges;
}

SpecialNames special_names_from_config(const SideFile& config) {
  SpecialNames names;
  if (!config) return names;
  const Json j = parse_json(*config.content, config.label);
  if (!j.is_object()) throw FormatError(config.label + ": the top level must be a JSON object");
  names.bos = token_name(j, "bos_token", config.label);
  names.eos = token_name(j, "eos_token", config.label);
  names.unk = token_name(j, "unk_token", config.label);
  names.pad = token_name(j, "pad_token", config.label);
  names.added = added_tokens_decoder(j, config.label);
  return names;
}

void resolve_bos_eos(const SpecialNames& names, HfComponents& c) {
  const TemplateSpecials t = c.post_processor ? c.post_processor->specials() : TemplateSpecials{};
  if (names.bos) c.bos = first_known(c, {*names.bos});
  if (!c.bos && !t.before.empty()) c.bos = t.before.front();
  if (!c.bos) c.bos = first_known(c, {"<s>", "<|begin_of_text|>", "<bos>", "<|endoftext|>"});
  if (names.eos) c.eos = first_known(c, {*names.eos});
  if (!c.eos && !t.after.empty()) c.eos = t.after.back();
  if (!c.eos) c.eos = first_known(c, {"</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>"});
}

}  // namespace csa::tok
