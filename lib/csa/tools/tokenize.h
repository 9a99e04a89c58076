// csa-tokenize as a library call: the tokenizer a checkpoint carries, applied to a text (or its
// inverse on token ids), with the encode time measured inside the process.
//
// Special tokens follow METHOD.md's perplexity protocol (and load_corpus): the text is encoded
// as is, with the tokenizer's own template applied, which adds a BOS only for SentencePiece /
// Llama-style tokenizers (SentencePiece, llama2.c, a tokenizer.json TemplateProcessing that
// starts with BOS) and nothing for GPT-2 / Pythia / Qwen2 byte-level BPE. So `csa-tokenize
// MODEL corpus.txt` prints exactly the ids csa-eval / csa-calibrate / csa-sweep evaluate.
// `add_special_tokens = false` gives the bare ids (HF `add_special_tokens=False`).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "csa/core/json.h"
#include "csa/tokenizer/tokenizer.h"

namespace csa {

inline constexpr int kTokenizeSchemaVersion = 1;

// A tokenizer and where it came from.
struct LoadedTokenizer {
  std::unique_ptr<Tokenizer> tokenizer;
  std::string path;    // what the user named
  std::string source;  // "checkpoint (hf-directory)", "tokenizer files", ...
  double load_seconds = 0;
  Json to_json() const;  // {path, source, description, vocab_size, bos_id, eos_id, load_seconds}
};

// The tokenizer of `path`, reading as little as possible:
//   * a model (a Hugging Face directory with config.json, a TorchScript model.pt, a
//     .safetensors file, a llama2.c checkpoint .bin): the checkpoint's side files, exactly what
//     load_model() hands to the tools (weights are memory-mapped, never bound or hashed);
//   * otherwise a tokenizer file or a directory of tokenizer files (Tokenizer::from_path).
// A missing path is an IoError; a model without tokenizer files an InputError.
LoadedTokenizer load_tokenizer(const std::string& path);

struct TokenizeToolOptions {
  std::string model;               // model or tokenizer path (see load_tokenizer)
  std::string input = "-";         // text to encode, or ids to decode; "-" = stdin
  bool decode = false;             // input holds token ids; output the text
  bool add_special_tokens = true;  // encode: the template's BOS (see above)
  bool replace_invalid_utf8 = false;
  bool skip_special_tokens = false;  // decode: drop special tokens
};

struct TokenizeOutputs {
  std::vector<int32_t> ids;   // encoded ids, or the ids that were decoded
  std::string text;           // decoded text (decode), empty otherwise
  double encode_seconds = 0;  // the tokenizer call alone (encode or decode), wall clock
  Json info;                  // tokenizer, input, options, counts, seconds (for --json)
};

// Reads the input and encodes (or decodes) it. Errors name the input file: missing (IoError),
// invalid UTF-8 with its byte offset, a non-integer or out-of-vocabulary id (InputError).
// `command` is recorded in info["run"].
TokenizeOutputs run_tokenize(const TokenizeToolOptions& options, const std::string& command);

// The --json output: `info` indented, with the ids last on one line (a corpus is 10^5+ ids).
std::string tokenize_json_text(const TokenizeOutputs& outputs);

// "[1, 2, 3]" (one line, no trailing newline).
std::string ids_to_json_array(const std::vector<int32_t>& ids);

}  // namespace csa
