// Reading the files of Hugging Face BPE tokenizers: JSON without insertion-order overhead,
// token -> id vocabularies, merges lines, and tokenizer_config.json's special tokens.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "csa/tokenizer/factories.h"
#include "csa/tokenizer/hf_tokenizer.h"

namespace csa::tok {

// Parses `text` as JSON (std::map objects); a syntax error is a FormatError naming `origin`.
nlohmann::json parse_plain_json(std::string_view text, const std::string& origin);

// {"token": id, ...}; ids must be integers in [0, 2^31).
std::unordered_map<std::string, int32_t> parse_vocab_object(const nlohmann::json& j,
                                                            const std::string& origin);

// Lines as Rust's BufRead::lines() yields them ("\n" or "\r\n" ends a line; no empty last line).
std::vector<std::string> split_lines(std::string_view text);

// Merges "a b", one per line; lines starting with "#version" are skipped; any other line must be
// exactly two space-separated tokens (FormatError naming `origin` and the merge number).
std::vector<std::pair<std::string, std::string>> parse_merge_lines(
    const std::vector<std::string>& lines, const std::string& origin);

// tokenizer_config.json: the special token names and the added_tokens_decoder entries.
struct SpecialNames {
  std::optional<std::string> bos, eos, unk, pad;
  std::vector<AddedToken> added;  // added_tokens_decoder, by ascending id
};
SpecialNames special_names_from_config(const SideFile& config);

// Sets c.bos / c.eos: the configured names if they are tokens, else the template's leading /
// trailing special token, else a well-known name present in the vocabulary.
void resolve_bos_eos(const SpecialNames& names, HfComponents& c);

}  // namespace csa::tok
