// Post-processors (tokenizers/src/processors) for a single sequence: TemplateProcessing,
// RobertaProcessing / BertProcessing (CLS $A SEP), ByteLevel (nothing to do for ids), Sequence.
#include "csa/tokenizer/pipeline.h"
#include "csa/tokenizer/stage_json.h"

namespace csa::tok {
namespace {

constexpr const char* kSupported =
    "TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence";

class SurroundProcessor final : public PostProcessor {
 public:
  explicit SurroundProcessor(TemplateSpecials specials) : specials_(std::move(specials)) {}
  std::vector<int32_t> process(std::vector<int32_t> ids) const override {
    if (specials_.before.empty() && specials_.after.empty()) return ids;
    std::vector<int32_t> out;
    out.reserve(ids.size() + specials_.before.size() + specials_.after.size());
    out.insert(out.end(), specials_.before.begin(), specials_.before.end());
    out.insert(out.end(), ids.begin(), ids.end());
    out.insert(out.end(), specials_.after.begin(), specials_.after.end());
    return out;
  }
  TemplateSpecials specials() const override { return specials_; }

 private:
  TemplateSpecials specials_;
};

class SequenceProcessor final : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> stages)
      : stages_(std::move(stages)) {}
  std::vector<int32_t> process(std::vector<int32_t> ids) const override {
    for (const auto& s : stages_) ids = s->process(std::move(ids));
    return ids;
  }
  TemplateSpecials specials() const override {
    TemplateSpecials all;
    for (const auto& s : stages_) {
      TemplateSpecials t = s->specials();
      all.before.insert(all.before.begin(), t.before.begin(), t.before.end());
      all.after.insert(all.after.end(), t.after.begin(), t.after.end());
    }
    return all;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> stages_;
};

// The ids of special token `name` from the template's "special_tokens" map.
std::vector<int32_t> special_ids(const Json& j, const std::string& name, const std::string& origin,
                                 const std::string& field) {
  const Json* specials = j.contains("special_tokens") ? &j.at("special_tokens") : nullptr;
  if (specials == nullptr || !specials->is_object() || !specials->contains(name))
    throw FormatError(origin + ": field '" + field + ".special_tokens' has no entry for '" + name +
                      "' used by the single template");
  const std::string entry = field + ".special_tokens." + name;
  const Json& ids = array_field(specials->at(name), "ids", origin, entry);
  std::vector<int32_t> out;
  for (const Json& id : ids) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
      throw FormatError(origin + ": field '" + entry + ".ids' holds " + id.dump() +
                        ", not a token id");
    out.push_back(id.get<int32_t>());
  }
  return out;
}

// "single": [{"SpecialToken": {"id": "<s>", ...}}, {"Sequence": {"id": "A", ...}}, ...]
std::unique_ptr<PostProcessor> make_template(const Json& j, const std::string& origin,
                                             const std::string& field) {
  const Json& single = array_field(j, "single", origin, field);
  TemplateSpecials specials;
  bool seen_sequence = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const Json& piece = single[i];
    const std::string where = field + ".single[" + std::to_string(i) + "]";
    if (piece.is_object() && piece.contains("Sequence")) {
      if (seen_sequence)
        throw FormatError(origin + ": field '" + where + "': the single template names $A twice");
      seen_sequence = true;
    } else if (piece.is_object() && piece.contains("SpecialToken") &&
               piece.at("SpecialToken").is_object()) {
      const std::string name =
          JsonReader(piece.at("SpecialToken"), origin, where + ".SpecialToken.").get_string("id");
      auto ids = special_ids(j, name, origin, field);
      auto& side = seen_sequence ? specials.after : specials.before;
      side.insert(side.end(), ids.begin(), ids.end());
    } else {
      throw FormatError(origin + ": field '" + where +
                        "' must be {\"Sequence\": ...} or {\"SpecialToken\": ...}, got " +
                        piece.dump());
    }
  }
  if (!seen_sequence)
    throw FormatError(origin + ": field '" + field + ".single' never places the sequence $A");
  return std::make_unique<SurroundProcessor>(std::move(specials));
}

// "cls": ["<s>", 0], "sep": ["</s>", 2]
int32_t token_pair_id(const Json& j, const std::string& key, const std::string& origin,
                      const std::string& field) {
  const Json& pair = array_field(j, key, origin, field);
  if (pair.size() != 2 || !pair[1].is_number_integer() || pair[1].get<int64_t>() < 0)
    throw FormatError(origin + ": field '" + field + "." + key + "' must be [token, id], got " +
                      pair.dump());
  return pair[1].get<int32_t>();
}

std::unique_ptr<PostProcessor> make_sequence(const Json& j, const std::string& origin,
                                             const std::string& field) {
  std::vector<std::unique_ptr<PostProcessor>> stages;
  const Json& list = array_field(j, "processors", origin, field);
  for (size_t i = 0; i < list.size(); ++i) {
    auto s = make_post_processor(list[i], origin, field + ".processors[" + std::to_string(i) + "]");
    if (s) stages.push_back(std::move(s));
  }
  return std::make_unique<SequenceProcessor>(std::move(stages));
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const Json& j, const std::string& origin,
                                                   const std::string& field) {
  if (j.is_null()) return nullptr;
  const std::string type = stage_type(j, origin, field);
  if (type == "TemplateProcessing") return make_template(j, origin, field);
  if (type == "ByteLevel") return std::make_unique<SurroundProcessor>(TemplateSpecials{});
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    TemplateSpecials s;
    s.before.push_back(token_pair_id(j, "cls", origin, field));
    s.after.push_back(token_pair_id(j, "sep", origin, field));
    return std::make_unique<SurroundProcessor>(std::move(s));
  }
  if (type == "Sequence") return make_sequence(j, origin, field);
  throw_unsupported_stage("post-processor", type, origin, field, kSupported);
}

}  // namespace csa::tok
