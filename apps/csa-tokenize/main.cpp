// csa-tokenize MODEL FILE -> token ids (or, with --decode, ids -> text).
#include <spdlog/spdlog.h>

#include "csa/app/cli.h"
#include "csa/core/file.h"
#include "csa/core/json.h"
#include "csa/tools/tokenize.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Tokenize a text file with the tokenizer a model carries (model.pt, a Hugging Face\n"
      "directory, a .safetensors or llama2.c .bin with tokenizer files beside it), or with a\n"
      "tokenizer file / directory. Prints the ids as a JSON array; --json prints an object with\n"
      "the ids, their count, the tokenizer and the encode time.\n\n"
      "Special tokens: as csa-eval's perplexity protocol, the text is encoded as is with the\n"
      "tokenizer's own template, which adds a BOS only for SentencePiece / Llama-style\n"
      "tokenizers (nothing for GPT-2 / Pythia / Qwen2). --no-add-special gives the bare ids.\n\n"
      "Examples:\n"
      "  csa-tokenize ../shared/models/gpt2-mini ../shared/corpora/wikitext2-test.raw -o ids.json\n"
      "  echo 'Hello world' | csa-tokenize model.pt - --json\n"
      "  csa-tokenize model.pt ids.json --decode > text.txt\n"
      "  csa-tokenize ../shared/tokenizers/llama2/tokenizer.model notes.txt --no-add-special"};
  csa::TokenizeToolOptions opts;
  csa::app::CommonOptions common;
  std::string output = "-";
  bool json = false, show_time = false;
  app.add_option("model", opts.model,
                 "Model (model.pt, HF directory, .safetensors, llama2.c .bin) or tokenizer "
                 "file / directory")
      ->required();
  app.add_option("file", opts.input, "Text to tokenize (ids with --decode); - for stdin")
      ->required();
  app.add_option("-o,--output", output, "Output file, written atomically (default: stdout)");
  app.add_flag("--decode", opts.decode,
               "FILE holds token ids (JSON array, whitespace-separated, or csa-tokenize --json "
               "output); print the text");
  app.add_flag("--json", json, "Print a JSON object: ids, count, tokenizer, input, timing");
  app.add_flag("--add-special,!--no-add-special", opts.add_special_tokens,
               "Apply the tokenizer's template (BOS for SentencePiece / Llama; default on)");
  app.add_flag("--skip-special", opts.skip_special_tokens,
               "--decode: drop special tokens (BOS, EOS, ...) from the text");
  app.add_flag("--replace-invalid-utf8", opts.replace_invalid_utf8,
               "Replace invalid UTF-8 by U+FFFD instead of failing");
  app.add_flag("--time", show_time, "Log the time of the tokenizer call alone to stderr");
  csa::app::add_common_options(app, common);
  return csa::app::run_main(app, common, argc, argv, [&] {
    csa::app::check_std_streams({{"file", opts.input}});
    csa::TokenizeOutputs out = csa::run_tokenize(opts, csa::app::recorded_command());
    if (show_time)
      spdlog::info("{} {} bytes -> {} tokens in {:.6f} s ({})", opts.decode ? "decoded" : "encoded",
                   out.info["input"]["bytes"].get<size_t>(), out.ids.size(), out.encode_seconds,
                   out.info["tokenizer"]["description"].get<std::string>());
    if (json)
      csa::write_file_atomic(output, csa::tokenize_json_text(out));
    else if (opts.decode)
      csa::write_file_atomic(output, out.text);
    else
      csa::write_file_atomic(output, csa::ids_to_json_array(out.ids) + "\n");
    return 0;
  });
}
