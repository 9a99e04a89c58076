#include "csa/corpus/corpus.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "csa/core/error.h"
#include "csa/core/file.h"
#include "csa/core/hash.h"
#include "csa/core/profile.h"
#include "csa/core/utf8.h"
#include "csa/tokenizer/tokenizer.h"

namespace csa {

std::vector<int64_t> parse_token_ids(std::string_view text, const std::string& origin) {
  std::vector<int64_t> ids;
  size_t i = 0;
  const size_t n = text.size();
  auto skip = [&] {
    while (i < n && (std::isspace(static_cast<unsigned char>(text[i])) || text[i] == ',' ||
                     text[i] == '[' || text[i] == ']'))
      ++i;
  };
  auto bad = [&](size_t at, const std::string& what) {
    return InputError(origin + ": " + what + " at byte " + std::to_string(at) +
                      " (expected token ids separated by whitespace or commas, or a JSON array)");
  };
  skip();
  while (i < n) {
    size_t start = i;
    if (text[i] == '-') ++i;
    while (i < n && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i == start || (i == start + 1 && text[start] == '-')) throw bad(start, "not an integer");
    const std::string digits(text.substr(start, i - start));
    errno = 0;
    const long long v = std::strtoll(digits.c_str(), nullptr, 10);
    if (errno == ERANGE) throw bad(start, "integer '" + digits + "' out of range");
    ids.push_back(static_cast<int64_t>(v));
    skip();
  }
  return ids;
}

Json Corpus::identity() const {
  return {{"path", path},
          {"sha256", sha256},
          {"bytes", bytes},
          {"tokenization", tokenization},
          {"n_tokens", ids.size()}};
}

std::vector<int64_t> Corpus::slice(int64_t offset, int64_t count, int64_t minimum,
                                   const std::string& what) const {
  const int64_t n = static_cast<int64_t>(ids.size());
  if (offset < 0) throw UsageError(what + ": negative token offset");
  const int64_t end = count > 0 ? std::min(n, offset + count) : n;
  const int64_t have = std::max<int64_t>(0, end - offset);
  if (have < minimum)
    throw InputError(input_label(path) + ": " + what + " needs at least " +
                     std::to_string(minimum) + " tokens from token " + std::to_string(offset) +
                     ", but the corpus has " + std::to_string(n) + " tokens in all");
  return std::vector<int64_t>(ids.begin() + offset, ids.begin() + offset + have);
}

Corpus load_corpus(const std::string& path, const Model& model, const CorpusOptions& options) {
  CSA_PROFILE_SCOPE("load/corpus");  // read, hash, tokenize or parse
  Corpus c;
  c.path = path;  // as given: "-" or /dev/fd/63 for streamed input (the sha256 says what was read)
  const std::string name = input_label(path);
  std::string text = read_file(path);
  c.bytes = text.size();
  c.sha256 = sha256_hex(text);
  if (text.empty()) throw InputError(name + ": the corpus is empty");
  if (options.pretokenized) {
    c.ids = parse_token_ids(text, name + " (--pretokenized)");
    c.tokenization = "pretokenized ids";
    if (c.ids.empty()) throw InputError(name + ": the pretokenized corpus holds no ids");
    for (size_t i = 0; i < c.ids.size(); ++i)
      if (c.ids[i] < 0 || c.ids[i] >= model.config.vocab_size)
        throw InputError(name + ": token id " + std::to_string(c.ids[i]) + " (at index " +
                         std::to_string(i) + ") is outside the model's vocabulary of " +
                         std::to_string(model.config.vocab_size));
    return c;
  }
  if (auto bad = find_invalid_utf8(text)) {
    if (!options.replace_invalid_utf8)
      throw InputError(name + ": not valid UTF-8 at byte " + std::to_string(*bad) +
                       " (pass --replace-invalid-utf8 to substitute U+FFFD, or --pretokenized "
                       "for a file of token ids)");
    text = replace_invalid_utf8(text);
  }
  auto tokenizer = Tokenizer::from_files(model.files, model.identity.path);
  EncodeOptions eo;
  eo.add_special_tokens = true;  // only a template BOS (SentencePiece / Llama) is added
  std::vector<int32_t> ids = tokenizer->encode(text, eo);
  c.ids.assign(ids.begin(), ids.end());
  c.tokenization = tokenizer->description();
  if (c.ids.empty()) throw InputError(name + ": the corpus tokenizes to no tokens");
  for (int64_t id : c.ids)
    if (id < 0 || id >= model.config.vocab_size)
      throw InputError(name + ": the tokenizer produced id " + std::to_string(id) +
                       ", outside the model's vocabulary of " +
                       std::to_string(model.config.vocab_size) + " (tokenizer and model disagree)");
  return c;
}

}  // namespace csa
