// A read-only ZIP reader over a memory map (the container of TorchScript archives).
// Supports stored and deflated entries and ZIP64; validates every offset against the file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "csa/core/file.h"

namespace csa {

class ZipArchive {
 public:
  struct Entry {
    std::string name;
    uint16_t method = 0;  // 0 stored, 8 deflated
    uint64_t data_offset = 0, compressed_size = 0, size = 0;
  };

  // Throws IoError / FormatError naming the file ("truncated", "not a ZIP archive", ...).
  static ZipArchive open(const std::string& path);
  static ZipArchive open(std::shared_ptr<const MappedFile> file);

  const std::vector<Entry>& entries() const { return entries_; }
  const Entry* find(const std::string& name) const;
  // The bytes of a stored entry, zero-copy; `read` also inflates deflated ones.
  const uint8_t* stored_data(const Entry& e) const;
  std::string read(const Entry& e) const;
  const std::shared_ptr<const MappedFile>& file() const { return file_; }
  const std::string& path() const { return file_->path(); }

 private:
  std::shared_ptr<const MappedFile> file_;
  std::vector<Entry> entries_;
};

}  // namespace csa
