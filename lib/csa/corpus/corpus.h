// Corpora: a text file tokenized once with the model's own tokenizer (METHOD.md: the file as is,
// no added special tokens except a BOS where the tokenizer's template adds one), or a file of
// token ids the user tokenized themselves.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "csa/core/json.h"
#include "csa/model/model.h"

namespace csa {

struct CorpusOptions {
  bool pretokenized = false;  // the file holds token ids (JSON array or whitespace-separated)
  bool replace_invalid_utf8 = false;  // otherwise invalid UTF-8 is an error with its byte offset
};

struct Corpus {
  std::string path;
  std::string sha256;  // of the file's bytes
  size_t bytes = 0;
  std::string tokenization;  // which tokenizer made the ids
  std::vector<int64_t> ids;

  // {path, sha256, bytes, tokenization, n_tokens}
  Json identity() const;
  // Tokens [offset, offset + count) (count <= 0: to the end); InputError naming the file if the
  // corpus has fewer than `minimum` tokens there.
  std::vector<int64_t> slice(int64_t offset, int64_t count, int64_t minimum,
                             const std::string& what) const;
};

// Token ids written as text: whitespace- or comma-separated integers, optionally inside a JSON
// array ("[1, 2, 3]", "1 2 3", "1,2\n3"). A non-integer or an id that does not fit in 64 bits is
// an InputError naming `origin` and the byte offset. Range checks are the caller's.
std::vector<int64_t> parse_token_ids(std::string_view text, const std::string& origin);

// Errors name the file: missing/unreadable (IoError), empty, invalid UTF-8 at byte N, ids outside
// the model's vocabulary, no tokenizer in the model (InputError).
Corpus load_corpus(const std::string& path, const Model& model, const CorpusOptions& options = {});

}  // namespace csa
