// Internal: the concrete tokenizers behind Tokenizer::from_files, and the text check they share.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "csa/tokenizer/tokenizer.h"

namespace csa::tok {

// A side file: its content and the name used in errors ("<origin>/tokenizer.json").
struct SideFile {
  const std::string* content = nullptr;
  std::string label;
  explicit operator bool() const { return content != nullptr; }
};

// The text to tokenize: `text` itself if valid UTF-8; with replace_invalid_utf8, the text with
// invalid sequences replaced by U+FFFD; otherwise an InputError naming `who` and the byte offset.
std::string checked_text(std::string_view text, const EncodeOptions& opts, const std::string& who);

// An id outside [0, vocab_size) is an InputError naming `who`.
void check_id(int32_t id, int64_t vocab_size, const std::string& who);

// tokenizer.json; `config` is tokenizer_config.json when present (BOS / EOS names).
std::unique_ptr<Tokenizer> make_hf_json_tokenizer(const SideFile& json, const SideFile& config);
// GPT-2's vocab.json|encoder.json + merges.txt|vocab.bpe (+ optional tokenizer_config.json and
// added_tokens.json).
std::unique_ptr<Tokenizer> make_gpt2_files_tokenizer(const SideFile& vocab, const SideFile& merges,
                                                     const SideFile& config,
                                                     const SideFile& added_tokens);
std::unique_ptr<Tokenizer> make_sentencepiece_tokenizer(const SideFile& model);
std::unique_ptr<Tokenizer> make_llama2c_tokenizer(const SideFile& bin);

}  // namespace csa::tok
