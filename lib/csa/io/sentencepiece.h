// SentencePiece models through the sentencepiece library, isolated in its own module
// (lib/spm_module: see there why it cannot be linked into a process that links libtorch).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace csa {

class SentencePieceModel {
 public:
  // `model` is the serialized ModelProto (tokenizer.model); errors name `origin`.
  SentencePieceModel(std::string_view model, const std::string& origin);
  ~SentencePieceModel();
  SentencePieceModel(const SentencePieceModel&) = delete;
  SentencePieceModel& operator=(const SentencePieceModel&) = delete;

  // No BOS/EOS. A long text is encoded in parts cut at spaces when that provably gives the same
  // ids (split_at_spaces), on the CPU threads: sentencepiece's encoder slows down more than
  // linearly on megabytes.
  std::vector<int32_t> encode(std::string_view text) const;
  // Whether encode(a + " " + b) == encode(a) ++ encode(b) (dummy prefix: b as is; without one,
  // " " + b) for a ending and b beginning with a character other than a space: the normalizer is
  // the identity (spaces escaped to U+2581, no rules that could span the cut), whitespace is a
  // prefix (not treat_whitespace_as_suffix), and no piece holds U+2581 right after another
  // character, so no piece can span the cut.
  bool split_at_spaces() const { return split_at_spaces_; }
  // The library's encoder on the whole text in one call: what encode must equal.
  std::vector<int32_t> encode_whole(std::string_view text) const;
  std::string decode(const std::vector<int32_t>& ids) const;
  int32_t piece_size() const;
  int32_t bos_id() const;  // -1 if none
  int32_t eos_id() const;
  int32_t unk_id() const;
  bool is_control(int32_t id) const;
  std::string id_to_piece(int32_t id) const;

  // Where the module was found (for diagnostics); throws IoError if it cannot be loaded.
  static std::string module_path();

 private:
  void* handle_ = nullptr;
  std::string origin_;
  bool split_at_spaces_ = false;
  bool dummy_prefix_ = false;
};

}  // namespace csa
