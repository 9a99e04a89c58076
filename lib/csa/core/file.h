// Files: read-only memory maps, whole-file reads, atomic writes. Inputs may be streams: "-" is
// standard input, and pipes, FIFOs and process substitutions (/dev/fd/N) are read to their end,
// never sized by st_size (which is 0 for them).
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
  // Throws IoError naming `path` if it is missing, a directory, or unreadable. A regular file is
  // mapped; "-" (standard input) and other streams are read to their end into memory.
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

// "-": standard input, wherever a tool reads an input file.
inline bool is_stdin_path(const std::string& path) { return path == "-"; }
// How an input path is named in messages: "<stdin>" for "-", else the path as given.
std::string input_label(const std::string& path);

// Reads a whole file: a regular file through a map, "-" and pipes / FIFOs / /dev/fd/N as streams
// to their end. Throws IoError naming the path (missing, a directory, unreadable); standard input
// can be read once per process (a second read is a UsageError: only one input may be "-").
std::string read_file(const std::string& path);
bool file_exists(const std::string& path);
bool is_directory(const std::string& path);
bool is_regular_file(const std::string& path);  // false for pipes, FIFOs, devices, directories

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
