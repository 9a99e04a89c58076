// Files: read-only memory maps, whole-file reads, atomic writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace csa {

// A read-only memory map of a whole file. Shared so that tensors viewing it keep it alive.
class MappedFile {
 public:
  // Throws IoError naming `path` if it is missing, a directory, or unreadable.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  // An in-memory copy of `bytes` that reads like a file named `label` (fuzzers, tests). The copy
  // is exactly `bytes.size()` long, so AddressSanitizer sees any read past its end.
  static std::shared_ptr<const MappedFile> from_bytes(const std::string& label,
                                                      std::string_view bytes);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool owned_ = false;  // from_bytes: data_ is a new[] copy, not a map
};

// Reads a whole file; throws IoError naming the path.
std::string read_file(const std::string& path);
bool file_exists(const std::string& path);
bool is_directory(const std::string& path);

// Writes `content` to `path` atomically: a temporary file beside it, fsync, rename.
// On any failure (unwritable directory, disk full) throws IoError and leaves no file behind.
// path "-" writes to stdout.
void write_file_atomic(const std::string& path, std::string_view content);

// Streams output to a temporary file that becomes `path` only on commit(); the destructor
// removes the temporary if commit() was never reached (no partial outputs).
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  const std::string& temp_path() const { return temp_path_; }
  void commit();

 private:
  std::string path_, temp_path_;
  bool committed_ = false;
};

}  // namespace csa
