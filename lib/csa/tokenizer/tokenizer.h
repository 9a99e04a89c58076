// Tokenizers: whatever a checkpoint carries, with Hugging Face's exact ids.
//   * tokenizer.json, BPE model (ByteLevel / Split+ByteLevel / Metaspace pre-tokenizers,
//     byte_fallback, added & special tokens, TemplateProcessing post-processor, decoders)
//   * GPT-2's original vocab.json|encoder.json + merges.txt|vocab.bpe
//   * SentencePiece tokenizer.model (through the sentencepiece library)
//   * llama2.c tokenizer.bin / tok512.bin
// Unknown pre-tokenizers, normalizers or model types are UnsupportedErrors naming them.
// docs/tokenizers.md lists what is supported, what is refused and how BOS is handled.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace csa {

struct EncodeOptions {
  // Apply the tokenizer's own template (e.g. Llama's BOS). METHOD.md's perplexity protocol
  // tokenizes corpora with this on: only SentencePiece/Llama-style templates add anything.
  bool add_special_tokens = true;
  // Invalid UTF-8 is an InputError giving the byte offset; with this, it is replaced by U+FFFD
  // first (as Python's errors="replace" does).
  bool replace_invalid_utf8 = false;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // From the side files of a checkpoint (file name -> content; see side_file_names()).
  // Preference: tokenizer.json, then vocab.json/encoder.json + merges.txt/vocab.bpe, then
  // tokenizer.model, then tokenizer.bin / tok512.bin. `origin` names the model in errors.
  static std::unique_ptr<Tokenizer> from_files(const std::map<std::string, std::string>& files,
                                               const std::string& origin);
  // From a tokenizer file or a directory holding tokenizer files. A file is recognized by its
  // name (as above) or extension (.json, .model, .bin); a GPT-2 vocab/merges path loads its
  // directory. A missing path is an IoError.
  static std::unique_ptr<Tokenizer> from_path(const std::string& path);

  // Thread-safe. Invalid UTF-8 is an InputError giving the byte offset (see EncodeOptions).
  virtual std::vector<int32_t> encode(std::string_view text,
                                      const EncodeOptions& opts = {}) const = 0;
  // Ids outside [0, vocab_size()) are an InputError. Invalid UTF-8 in the output is U+FFFD.
  virtual std::string decode(const std::vector<int32_t>& ids,
                             bool skip_special_tokens = false) const = 0;
  // The largest id + 1 (vocabulary and added tokens).
  virtual int64_t vocab_size() const = 0;
  virtual std::optional<int32_t> bos_id() const = 0;
  virtual std::optional<int32_t> eos_id() const = 0;
  // "tokenizer.json (BPE, ByteLevel)", "sentencepiece", "gpt2 vocab+merges", "llama2.c", ...
  virtual std::string description() const = 0;
};

}  // namespace csa
