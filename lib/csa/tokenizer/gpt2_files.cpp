// GPT-2's original files: encoder.json|vocab.json (token -> id) and vocab.bpe|merges.txt, read
// into the pipeline GPT2TokenizerFast uses: ByteLevel(add_prefix_space=false) + BPE + ByteLevel
// decoder, with <|endoftext|> (or the configured special tokens) matched before pre-tokenizing.
#include <algorithm>

#include "csa/core/error.h"
#include "csa/tokenizer/factories.h"
#include "csa/tokenizer/hf_files.h"

namespace csa::tok {
namespace {

// added_tokens.json: {"token": id, ...}, non-special tokens.
std::vector<AddedToken> parse_added_tokens_file(const SideFile& file) {
  std::vector<AddedToken> out;
  if (!file) return out;
  const auto table = parse_vocab_object(parse_plain_json(*file.content, file.label), file.label);
  std::vector<std::pair<int32_t, std::string>> by_id;
  for (const auto& [content, id] : table) by_id.emplace_back(id, content);
  std::sort(by_id.begin(), by_id.end());
  for (const auto& [id, content] : by_id) {
    AddedToken t;
    t.content = content;
    out.push_back(t);
  }
  return out;
}

std::vector<AddedToken> gpt2_added_tokens(const SpecialNames& names, const SideFile& added_file) {
  std::vector<AddedToken> tokens = names.added;
  std::vector<std::string> specials;
  for (const auto* n : {&names.bos, &names.eos, &names.unk, &names.pad})
    if (*n) specials.push_back(**n);
  if (specials.empty()) specials.push_back("<|endoftext|>");  // GPT2Tokenizer's defaults
  for (const std::string& s : specials) {
    AddedToken t;
    t.content = s;
    t.special = true;
    t.normalized = false;
    tokens.push_back(t);
  }
  for (AddedToken& t : parse_added_tokens_file(added_file)) tokens.push_back(std::move(t));
  return tokens;
}

}  // namespace

std::unique_ptr<Tokenizer> make_gpt2_files_tokenizer(const SideFile& vocab, const SideFile& merges,
                                                     const SideFile& config,
                                                     const SideFile& added_tokens) {
  BpeConfig bpe;
  bpe.vocab = parse_vocab_object(parse_plain_json(*vocab.content, vocab.label), vocab.label);
  bpe.merges = parse_merge_lines(split_lines(*merges.content), merges.label);
  HfComponents c;
  c.pre_tokenizer = make_gpt2_pre_tokenizer();
  c.decoder = make_byte_level_decoder();
  c.model = std::make_unique<BpeModel>(std::move(bpe), vocab.label + " + " + merges.label);
  const SpecialNames names = special_names_from_config(config);
  c.added.add(gpt2_added_tokens(names, added_tokens), *c.model, nullptr);
  c.description = "gpt2 vocab+merges (" + vocab.label + ", " + merges.label + ")";
  resolve_bos_eos(names, c);
  return std::make_unique<HfTokenizer>(std::move(c));
}

}  // namespace csa::tok
