// tokenizer.json -> HfTokenizer (tokenizers/src/tokenizer/serialization.rs and
// models/bpe/serialization.rs). The document is parsed with nlohmann::json (std::map objects):
// ordered_json's linear key lookup would make a 150k-entry vocabulary quadratic to load.
#include "csa/core/error.h"
#include "csa/tokenizer/factories.h"
#include "csa/tokenizer/hf_files.h"
#include "csa/tokenizer/hf_tokenizer.h"
#include "csa/tokenizer/stage_json.h"

namespace csa::tok {
namespace {

using PlainJson = nlohmann::json;

// A stage's JSON (null when absent), as the ordered Json the stage factories read.
Json stage_json(const PlainJson& doc, const char* key) {
  return doc.contains(key) ? Json(doc.at(key)) : Json();
}

std::string optional_string(const PlainJson& model, const char* key, const std::string& origin) {
  if (!model.contains(key) || model.at(key).is_null()) return "";
  if (!model.at(key).is_string())
    throw FormatError(origin + ": field 'model." + key + "' must be a string or null");
  return model.at(key).get<std::string>();
}

bool optional_bool(const PlainJson& model, const char* key, const std::string& origin) {
  if (!model.contains(key) || model.at(key).is_null()) return false;
  if (!model.at(key).is_boolean())
    throw FormatError(origin + ": field 'model." + key + "' must be true or false");
  return model.at(key).get<bool>();
}

std::vector<std::pair<std::string, std::string>> parse_merges(const PlainJson& merges,
                                                              const std::string& origin) {
  if (!merges.is_array()) throw FormatError(origin + ": field 'model.merges' must be an array");
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  std::vector<std::string> lines;
  for (size_t i = 0; i < merges.size(); ++i) {
    const PlainJson& m = merges[i];
    if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else if (m.is_string()) {
      lines.push_back(m.get<std::string>());
    } else {
      throw FormatError(origin + ": field 'model.merges[" + std::to_string(i) +
                        "]' must be \"a b\" or [\"a\", \"b\"], got " + m.dump());
    }
  }
  if (!lines.empty() && !out.empty())
    throw FormatError(origin + ": field 'model.merges' mixes \"a b\" strings and [a, b] pairs");
  if (!lines.empty()) return parse_merge_lines(lines, origin + " (field 'model.merges')");
  return out;
}

BpeConfig parse_bpe(const PlainJson& model, const std::string& origin) {
  const std::string type = model.contains("type") && model.at("type").is_string()
                               ? model.at("type").get<std::string>()
                               : (model.contains("merges") ? "BPE" : "");
  if (type.empty())
    throw FormatError(origin + ": field 'model.type' is missing (and 'model.merges' too)");
  if (type != "BPE")
    throw UnsupportedError(origin + ": model type '" + type +
                           "' is not supported (only BPE; Unigram / WordPiece / WordLevel "
                           "tokenizer.json files are refused)");
  if (model.contains("dropout") && !model.at("dropout").is_null() &&
      !(model.at("dropout").is_number() && model.at("dropout").get<double>() == 0.0))
    throw UnsupportedError(origin + ": model.dropout " + model.at("dropout").dump() +
                           " makes BPE random; only null or 0 is supported");
  BpeConfig c;
  if (!model.contains("vocab")) throw FormatError(origin + ": field 'model.vocab' is missing");
  c.vocab = parse_vocab_object(model.at("vocab"), origin + " (field 'model.vocab')");
  if (model.contains("merges")) c.merges = parse_merges(model.at("merges"), origin);
  const std::string unk = optional_string(model, "unk_token", origin);
  if (!unk.empty()) c.unk_token = unk;
  c.continuing_subword_prefix = optional_string(model, "continuing_subword_prefix", origin);
  c.end_of_word_suffix = optional_string(model, "end_of_word_suffix", origin);
  c.fuse_unk = optional_bool(model, "fuse_unk", origin);
  c.byte_fallback = optional_bool(model, "byte_fallback", origin);
  c.ignore_merges = optional_bool(model, "ignore_merges", origin);
  return c;
}

AddedToken parse_added_token(const PlainJson& j, size_t index, const std::string& origin) {
  const std::string field = "added_tokens[" + std::to_string(index) + "]";
  if (!j.is_object()) throw FormatError(origin + ": field '" + field + "' must be an object");
  const Json ordered(j);
  const JsonReader r(ordered, origin, field + ".");
  return read_added_token(r);
}

std::vector<AddedToken> parse_added_tokens(const PlainJson& doc, const std::string& origin) {
  std::vector<AddedToken> tokens;
  if (!doc.contains("added_tokens") || doc.at("added_tokens").is_null()) return tokens;
  const PlainJson& list = doc.at("added_tokens");
  if (!list.is_array()) throw FormatError(origin + ": field 'added_tokens' must be an array");
  for (size_t i = 0; i < list.size(); ++i) tokens.push_back(parse_added_token(list[i], i, origin));
  return tokens;
}

// "ByteLevel", "Sequence[Split, ByteLevel]", "none".
std::string stage_summary(const Json& j, const char* list_key) {
  if (!j.is_object() || !j.contains("type")) return "none";
  const std::string type = j.at("type").is_string() ? j.at("type").get<std::string>() : "?";
  if (type != "Sequence" || !j.contains(list_key) || !j.at(list_key).is_array()) return type;
  std::string s = "Sequence[";
  for (size_t i = 0; i < j.at(list_key).size(); ++i)
    s += (i ? ", " : "") + stage_summary(j.at(list_key)[i], list_key);
  return s + "]";
}

}  // namespace

std::unique_ptr<Tokenizer> make_hf_json_tokenizer(const SideFile& json, const SideFile& config) {
  const std::string& origin = json.label;
  const PlainJson doc = parse_plain_json(*json.content, origin);
  if (!doc.is_object()) throw FormatError(origin + ": the top level must be a JSON object");
  if (!doc.contains("model") || !doc.at("model").is_object())
    throw FormatError(origin + ": field 'model' is missing or not an object");

  HfComponents c;
  const Json normalizer = stage_json(doc, "normalizer");
  const Json pre_tokenizer = stage_json(doc, "pre_tokenizer");
  c.normalizer = make_normalizer(normalizer, origin);
  c.pre_tokenizer = make_pre_tokenizer(pre_tokenizer, origin);
  c.post_processor = make_post_processor(stage_json(doc, "post_processor"), origin);
  c.decoder = make_decoder(stage_json(doc, "decoder"), origin);
  c.model = std::make_unique<BpeModel>(parse_bpe(doc.at("model"), origin), origin);
  c.added.add(parse_added_tokens(doc, origin), *c.model, c.normalizer.get());
  c.description = "tokenizer.json (BPE, pre-tokenizer " +
                  stage_summary(pre_tokenizer, "pretokenizers") + ", normalizer " +
                  stage_summary(normalizer, "normalizers") + ")";
  SpecialNames names = special_names_from_config(config);
  resolve_bos_eos(names, c);
  return std::make_unique<HfTokenizer>(std::move(c));
}

}  // namespace csa::tok
