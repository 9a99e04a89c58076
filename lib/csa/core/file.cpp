#include "csa/core/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <random>

#include "csa/core/error.h"

namespace csa {
namespace {

std::string errno_text() { return std::strerror(errno); }

std::string dir_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string temp_name_for(const std::string& path) {
  std::random_device rd;
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, ".tmp.%d.%08x", static_cast<int>(getpid()),
                static_cast<unsigned>(rd()));
  return path + suffix;
}

bool g_stdin_read = false;

// Reads `fd` to its end (a pipe, FIFO, terminal or socket: no size known in advance).
std::string read_stream(int fd, const std::string& label) {
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(label + ": read failed: " + errno_text());
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string read_stdin() {
  if (g_stdin_read)
    throw UsageError(
        "-: standard input was already read for another argument (only one input may be '-')");
  g_stdin_read = true;
  return read_stream(STDIN_FILENO, "<stdin>");
}

// Opens `path` for reading; a directory is an IoError. Returns the fd and its stat.
int open_input(const std::string& path, struct stat& st) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(path + ": cannot open: " + errno_text());
  if (fstat(fd, &st) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    throw IoError(path + ": cannot stat: " + why);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw IoError(path + ": is a directory, expected a file");
  }
  return fd;
}

// The whole content of a non-regular file (pipe, FIFO, /dev/fd/N), closing `fd`.
std::string read_stream_and_close(int fd, const std::string& path) {
  try {
    std::string s = read_stream(fd, path);
    ::close(fd);
    return s;
  } catch (...) {
    ::close(fd);
    throw;
  }
}

}  // namespace

std::string input_label(const std::string& path) { return is_stdin_path(path) ? "<stdin>" : path; }

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  if (is_stdin_path(path)) return from_bytes(path, read_stdin());
  struct stat st {};
  const int fd = open_input(path, st);
  if (!S_ISREG(st.st_mode)) return from_bytes(path, read_stream_and_close(fd, path));
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ > 0) {
    void* p = mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw IoError(path + ": cannot map: " + errno_text());
    }
    file->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return file;
}

std::shared_ptr<const MappedFile> MappedFile::from_bytes(const std::string& label,
                                                         std::string_view bytes) {
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = label;
  file->size_ = bytes.size();
  file->owned_ = true;
  if (!bytes.empty()) {
    auto* copy = new uint8_t[bytes.size()];
    std::memcpy(copy, bytes.data(), bytes.size());
    file->data_ = copy;
  }
  return file;
}

MappedFile::~MappedFile() {
  if (data_ == nullptr) return;
  if (owned_)
    delete[] data_;
  else
    munmap(const_cast<uint8_t*>(data_), size_);
}

std::string read_file(const std::string& path) {
  if (is_stdin_path(path)) return read_stdin();
  auto file = MappedFile::open(path);  // a map of a regular file, or a stream read to its end
  return std::string(file->view());
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_regular_file(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

AtomicFileWriter::AtomicFileWriter(std::string path)
    : path_(std::move(path)), temp_path_(temp_name_for(path_)) {
  if (is_directory(path_)) throw IoError(path_ + ": output path is a directory");
  std::string dir = dir_of(path_);
  if (!is_directory(dir)) throw IoError(path_ + ": output directory '" + dir + "' does not exist");
  if (access(dir.c_str(), W_OK) != 0)
    throw IoError(path_ + ": output directory '" + dir + "' is not writable: " + errno_text());
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) std::remove(temp_path_.c_str());
}

void AtomicFileWriter::commit() {
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    std::string why = errno_text();
    std::remove(temp_path_.c_str());
    throw IoError(path_ + ": cannot move the finished output into place: " + why);
  }
  committed_ = true;
}

void write_file_atomic(const std::string& path, std::string_view content) {
  if (path == "-") {
    std::cout.write(content.data(), static_cast<std::streamsize>(content.size()));
    std::cout.flush();
    if (!std::cout) throw IoError("<stdout>: write failed");
    return;
  }
  AtomicFileWriter writer(path);
  int fd = ::open(writer.temp_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(path + ": cannot create output: " + errno_text());
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string why = errno_text();
      ::close(fd);
      throw IoError(path + ": write failed: " + why);
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 && errno != EINVAL) {
    std::string why = errno_text();
    ::close(fd);
    throw IoError(path + ": write failed (fsync): " + why);
  }
  if (::close(fd) != 0) throw IoError(path + ": write failed (close): " + errno_text());
  writer.commit();
}

}  // namespace csa
