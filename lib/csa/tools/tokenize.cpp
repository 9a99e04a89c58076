#include "csa/tools/tokenize.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "csa/core/error.h"
#include "csa/core/file.h"
#include "csa/core/hash.h"
#include "csa/core/runtime.h"
#include "csa/core/utf8.h"
#include "csa/corpus/corpus.h"
#include "csa/io/llama2c.h"
#include "csa/model/checkpoint.h"

namespace csa {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string base_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Names a lone tokenizer file goes by (Tokenizer::from_path reads these without a model).
bool is_tokenizer_file_name(const std::string& name) {
  for (const char* n :
       {"tokenizer.json", "tokenizer.model", "tokenizer.bin", "tok512.bin", "vocab.json",
        "encoder.json", "merges.txt", "vocab.bpe", "tokenizer_config.json", "added_tokens.json"})
    if (name == n) return true;
  return false;
}

bool has_weights(const std::string& dir) {
  for (const char* n : {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                        "pytorch_model.bin.index.json"})
    if (file_exists(dir + "/" + n)) return true;
  return false;
}

// Whether `path` is a model checkpoint (as read_checkpoint sees it) rather than tokenizer files.
bool is_checkpoint(const std::string& path) {
  if (is_directory(path)) return file_exists(path + "/config.json") && has_weights(path);
  if (is_tokenizer_file_name(base_name(path))) return false;
  if (ends_with(path, ".safetensors")) return true;
  auto f = MappedFile::open(path);
  if (f->size() >= 4 && f->view().substr(0, 4) == std::string_view("PK\x03\x04", 4)) return true;
  return is_llama2c_checkpoint(path);
}

Json optional_id(const std::optional<int32_t>& id) { return id ? Json(*id) : Json(nullptr); }

}  // namespace

Json LoadedTokenizer::to_json() const {
  return {{"path", path},
          {"source", source},
          {"description", tokenizer->description()},
          {"vocab_size", tokenizer->vocab_size()},
          {"bos_id", optional_id(tokenizer->bos_id())},
          {"eos_id", optional_id(tokenizer->eos_id())},
          {"load_seconds", load_seconds}};
}

LoadedTokenizer load_tokenizer(const std::string& path) {
  if (is_stdin_path(path))
    throw UsageError(
        "model '-': the model or tokenizer cannot be read from standard input; give its file or "
        "directory (the text to tokenize may be '-')");
  if (!file_exists(path)) throw IoError(path + ": no such file or directory");
  const auto t0 = Clock::now();
  LoadedTokenizer out;
  out.path = path;
  if (is_checkpoint(path)) {
    // The same side files load_model() keeps, so the tools and csa-tokenize agree.
    Checkpoint ck = read_checkpoint(path);
    out.tokenizer = Tokenizer::from_files(ck.files, path);
    out.source = "checkpoint (" + ck.format + ")";
  } else {
    out.tokenizer = Tokenizer::from_path(path);
    out.source = "tokenizer files";
  }
  out.load_seconds = seconds_since(t0);
  return out;
}

std::string tokenize_json_text(const TokenizeOutputs& out) {
  Json rest = out.info;
  const bool has_ids = rest.contains("ids");
  rest.erase("ids");
  std::string text = dump_json(rest);  // "{\n  ...\n}\n"
  if (!has_ids) return text;
  const size_t close = text.rfind('}');
  CSA_CHECK(close != std::string::npos && close > 0, "dumped JSON object");
  size_t end = close;
  while (end > 0 && text[end - 1] == '\n') --end;
  return text.substr(0, end) + ",\n  \"ids\": " + ids_to_json_array(out.ids) + "\n}\n";
}

std::string ids_to_json_array(const std::vector<int32_t>& ids) {
  std::string s;
  s.reserve(ids.size() * 7 + 2);
  s += '[';
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(ids[i]);
  }
  s += ']';
  return s;
}

TokenizeOutputs run_tokenize(const TokenizeToolOptions& o, const std::string& command) {
  RunClock clock;
  LoadedTokenizer tok = load_tokenizer(o.model);
  const std::string name = input_label(o.input);
  std::string input = read_file(o.input);  // "-", pipes and /dev/fd/N are streamed
  TokenizeOutputs out;
  Json input_j = {{"path", name}, {"bytes", input.size()}, {"sha256", sha256_hex(input)}};

  if (o.decode) {
    std::vector<int64_t> ids;
    const size_t first = input.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && input[first] == '{') {  // csa-tokenize --json output
      const Json j = parse_json(input, name);
      if (!j.contains("ids") || !j["ids"].is_array())
        throw InputError(name +
                         ": a JSON object of ids needs an 'ids' array (as csa-tokenize "
                         "--json writes)");
      ids = parse_token_ids(j["ids"].dump(), name + ": field 'ids'");
    } else {
      ids = parse_token_ids(input, name);
    }
    const int64_t vocab = tok.tokenizer->vocab_size();
    for (size_t i = 0; i < ids.size(); ++i)
      if (ids[i] < 0 || ids[i] >= vocab)
        throw InputError(name + ": token id " + std::to_string(ids[i]) + " (at index " +
                         std::to_string(i) + ") is outside the tokenizer's vocabulary [0, " +
                         std::to_string(vocab) + ") of " + tok.path);
    out.ids.assign(ids.begin(), ids.end());
    const auto t0 = Clock::now();
    out.text = tok.tokenizer->decode(out.ids, o.skip_special_tokens);
    out.encode_seconds = seconds_since(t0);
    out.info = {{"schema_version", kTokenizeSchemaVersion},
                {"kind", "csa-tokenize-decode"},
                {"tokenizer", tok.to_json()},
                {"input", input_j},
                {"skip_special_tokens", o.skip_special_tokens},
                {"count", out.ids.size()},
                {"text", out.text},
                {"decode_seconds", out.encode_seconds}};
    out.info["run"] = run_metadata("csa-tokenize", command, at::kCPU, clock);
    return out;
  }

  const size_t n_bytes = input.size();
  bool replaced = false;
  if (auto bad = find_invalid_utf8(input)) {
    if (!o.replace_invalid_utf8)
      throw InputError(name + ": not valid UTF-8 at byte " + std::to_string(*bad) +
                       " (pass --replace-invalid-utf8 to substitute U+FFFD)");
    input = replace_invalid_utf8(input);
    replaced = true;
  }
  EncodeOptions eo;
  eo.add_special_tokens = o.add_special_tokens;
  eo.replace_invalid_utf8 = false;  // already valid
  const auto t0 = Clock::now();
  out.ids = tok.tokenizer->encode(input, eo);
  out.encode_seconds = seconds_since(t0);
  input_j["replaced_invalid_utf8"] = replaced;
  out.info = {{"schema_version", kTokenizeSchemaVersion},
              {"kind", "csa-tokenize"},
              {"tokenizer", tok.to_json()},
              {"input", input_j},
              {"add_special_tokens", o.add_special_tokens},
              {"count", out.ids.size()},
              {"ids", out.ids},
              {"encode_seconds", out.encode_seconds},
              {"bytes_per_second",
               out.encode_seconds > 0 ? static_cast<double>(n_bytes) / out.encode_seconds : 0.0}};
  out.info["run"] = run_metadata("csa-tokenize", command, at::kCPU, clock);
  return out;
}

}  // namespace csa
