#include "csa/tokenizer/tokenizer.h"

#include <spdlog/spdlog.h>

#include "csa/core/error.h"
#include "csa/core/file.h"
#include "csa/core/utf8.h"
#include "csa/tokenizer/factories.h"

namespace csa {
namespace {

// Every file name from_files() looks at.
const std::vector<std::string>& tokenizer_file_names() {
  static const std::vector<std::string> kNames = {
      "tokenizer.json", "tokenizer_config.json", "vocab.json",      "encoder.json",  "merges.txt",
      "vocab.bpe",      "added_tokens.json",     "tokenizer.model", "tokenizer.bin", "tok512.bin"};
  return kNames;
}

tok::SideFile side_file(const std::map<std::string, std::string>& files, const std::string& name,
                        const std::string& origin) {
  auto it = files.find(name);
  if (it == files.end()) return {};
  return tok::SideFile{&it->second, origin + "/" + name};
}

tok::SideFile first_of(const std::map<std::string, std::string>& files,
                       std::initializer_list<const char*> names, const std::string& origin) {
  for (const char* n : names)
    if (auto f = side_file(files, n, origin)) return f;
  return {};
}

std::string base_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string dir_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A lone file's role by its name: the known names, else by extension.
std::string role_of(const std::string& name) {
  for (const auto& known : tokenizer_file_names())
    if (name == known) return known;
  if (ends_with(name, ".json")) return "tokenizer.json";
  if (ends_with(name, ".model")) return "tokenizer.model";
  if (ends_with(name, ".bin")) return "tokenizer.bin";
  throw InputError(name +
                   ": not a tokenizer file name (expected tokenizer.json, tokenizer.model, "
                   "tokenizer.bin, tok512.bin, a GPT-2 vocab.json/encoder.json/merges.txt/"
                   "vocab.bpe, or a directory holding them)");
}

void read_known_files(const std::string& dir, std::map<std::string, std::string>& files) {
  for (const auto& name : tokenizer_file_names()) {
    const std::string p = dir + "/" + name;
    if (file_exists(p) && !is_directory(p)) files[name] = read_file(p);
  }
}

}  // namespace

namespace tok {

std::string checked_text(std::string_view text, const EncodeOptions& opts, const std::string& who) {
  const auto bad = find_invalid_utf8(text);
  if (!bad) return std::string(text);
  if (opts.replace_invalid_utf8) return replace_invalid_utf8(text);
  throw InputError(who + ": the text is not valid UTF-8 (byte offset " + std::to_string(*bad) +
                   "); pass replace_invalid_utf8 to replace invalid bytes by U+FFFD");
}

void check_id(int32_t id, int64_t vocab_size, const std::string& who) {
  if (id < 0 || id >= vocab_size)
    throw InputError(who + ": token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                     std::to_string(vocab_size) + ")");
}

}  // namespace tok

std::unique_ptr<Tokenizer> Tokenizer::from_files(const std::map<std::string, std::string>& files,
                                                 const std::string& origin) {
  const tok::SideFile config = side_file(files, "tokenizer_config.json", origin);
  if (auto json = side_file(files, "tokenizer.json", origin)) {
    auto hf = tok::make_hf_json_tokenizer(json, config);
    // A tokenizer.json far smaller than the SentencePiece model beside it is a stub (seen in
    // the wild: llama-mini's has 3 tokens and no merges, so every text encodes to nothing,
    // in HF too). The SentencePiece model is then the model's real tokenizer.
    if (auto model = side_file(files, "tokenizer.model", origin)) {
      auto spm = tok::make_sentencepiece_tokenizer(model);
      if (hf->vocab_size() * 2 < spm->vocab_size()) {
        spdlog::warn(
            "{}: tokenizer.json has {} tokens but tokenizer.model {} pieces: using "
            "tokenizer.model",
            origin, hf->vocab_size(), spm->vocab_size());
        return spm;
      }
    }
    return hf;
  }
  const tok::SideFile vocab = first_of(files, {"vocab.json", "encoder.json"}, origin);
  const tok::SideFile merges = first_of(files, {"merges.txt", "vocab.bpe"}, origin);
  if (vocab && merges)
    return tok::make_gpt2_files_tokenizer(vocab, merges, config,
                                          side_file(files, "added_tokens.json", origin));
  if (auto model = side_file(files, "tokenizer.model", origin))
    return tok::make_sentencepiece_tokenizer(model);
  if (auto bin = first_of(files, {"tokenizer.bin", "tok512.bin"}, origin))
    return tok::make_llama2c_tokenizer(bin);
  std::string hint;
  if (vocab) hint = "; " + vocab.label + " is there but merges.txt / vocab.bpe is missing";
  if (merges) hint = "; " + merges.label + " is there but vocab.json / encoder.json is missing";
  throw InputError(origin +
                   ": no tokenizer files (looked for tokenizer.json, vocab.json|"
                   "encoder.json + merges.txt|vocab.bpe, tokenizer.model, tokenizer.bin|"
                   "tok512.bin)" +
                   hint);
}

std::unique_ptr<Tokenizer> Tokenizer::from_path(const std::string& path) {
  if (!file_exists(path)) throw IoError(path + ": no such file or directory");
  std::map<std::string, std::string> files;
  if (is_directory(path)) {
    read_known_files(path, files);
    return from_files(files, path);
  }
  const std::string dir = dir_name(path), role = role_of(base_name(path));
  if (role == "vocab.json" || role == "encoder.json" || role == "merges.txt" ||
      role == "vocab.bpe") {
    read_known_files(dir, files);  // the pair lives together
    return from_files(files, dir);
  }
  const std::string content = read_file(path);
  const tok::SideFile file{&content, path};
  if (role == "tokenizer.json") {
    const std::string config_path = dir + "/tokenizer_config.json";
    const std::string config = file_exists(config_path) ? read_file(config_path) : "";
    return tok::make_hf_json_tokenizer(
        file, config.empty() ? tok::SideFile{} : tok::SideFile{&config, config_path});
  }
  if (role == "tokenizer.model") return tok::make_sentencepiece_tokenizer(file);
  if (role == "tokenizer.bin" || role == "tok512.bin") return tok::make_llama2c_tokenizer(file);
  files[role] = content;  // tokenizer_config.json / added_tokens.json alone
  return from_files(files, dir);
}

}  // namespace csa
