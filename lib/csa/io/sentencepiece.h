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

  std::vector<int32_t> encode(std::string_view text) const;  // no BOS/EOS
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
};

}  // namespace csa
