#include "csa/io/zip.h"

#include <cstring>

#include "csa/core/compress.h"
#include "csa/core/error.h"

namespace csa {
namespace {

constexpr uint32_t kEocdSig = 0x06054b50, kEocd64Sig = 0x06064b50, kEocd64LocSig = 0x07064b50,
                   kCentralSig = 0x02014b50, kLocalSig = 0x04034b50;

struct Cursor {
  const uint8_t* base;
  size_t size;
  const std::string& path;
  uint64_t u(uint64_t off, int bytes) const {
    // Offsets come from the file (up to 2^64 - 1 in ZIP64 records): compare without overflow.
    if (off > size || static_cast<uint64_t>(bytes) > size - off)
      throw FormatError(path + ": truncated ZIP archive (a record at byte " + std::to_string(off) +
                        " runs past the end of the " + std::to_string(size) + "-byte file)");
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | base[off + i];
    return v;
  }
};

}  // namespace

ZipArchive ZipArchive::open(const std::string& path) { return open(MappedFile::open(path)); }

ZipArchive ZipArchive::open(std::shared_ptr<const MappedFile> file) {
  ZipArchive zip;
  zip.file_ = std::move(file);
  const std::string& path = zip.file_->path();
  const size_t size = zip.file_->size();
  Cursor c{zip.file_->data(), size, path};
  if (size < 22)
    throw FormatError(path + ": not a ZIP/TorchScript archive (" + std::to_string(size) +
                      " bytes, too short)");
  // The end-of-central-directory record sits in the last 22 + 65535 bytes.
  size_t eocd = std::string::npos;
  size_t lowest = size > 22 + 65535 ? size - 22 - 65535 : 0;
  for (size_t i = size - 22 + 1; i-- > lowest;) {
    if (c.u(i, 4) == kEocdSig) {
      eocd = i;
      break;
    }
  }
  if (eocd == std::string::npos) {
    bool zip_start = size >= 4 && c.u(0, 4) == kLocalSig;
    throw FormatError(path + (zip_start ? ": truncated ZIP archive (no end-of-directory record; "
                                          "the file was cut short)"
                                        : ": not a ZIP/TorchScript archive"));
  }
  uint64_t n_entries = c.u(eocd + 10, 2);
  uint64_t cd_size = c.u(eocd + 12, 4);
  uint64_t cd_offset = c.u(eocd + 16, 4);
  if (n_entries == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    if (eocd < 20 || c.u(eocd - 20, 4) != kEocd64LocSig)
      throw FormatError(path + ": ZIP64 archive without its end-of-directory locator");
    uint64_t eocd64 = c.u(eocd - 20 + 8, 8);
    if (c.u(eocd64, 4) != kEocd64Sig)
      throw FormatError(path + ": ZIP64 end-of-directory record not found where it points");
    n_entries = c.u(eocd64 + 32, 8);
    cd_size = c.u(eocd64 + 40, 8);
    cd_offset = c.u(eocd64 + 48, 8);
  }
  if (cd_offset > size || cd_size > size - cd_offset)
    throw FormatError(path + ": truncated ZIP archive (central directory at " +
                      std::to_string(cd_offset) + " + " + std::to_string(cd_size) +
                      " bytes is past the end)");
  size_t p = cd_offset;
  for (uint64_t k = 0; k < n_entries; ++k) {
    if (c.u(p, 4) != kCentralSig)
      throw FormatError(path + ": corrupt ZIP central directory (entry " + std::to_string(k) + ")");
    Entry e;
    uint16_t flags = static_cast<uint16_t>(c.u(p + 8, 2));
    e.method = static_cast<uint16_t>(c.u(p + 10, 2));
    e.compressed_size = c.u(p + 20, 4);
    e.size = c.u(p + 24, 4);
    uint64_t name_len = c.u(p + 28, 2), extra_len = c.u(p + 30, 2), comment_len = c.u(p + 32, 2);
    uint64_t local = c.u(p + 42, 4);
    if (p + 46 + name_len > size) throw FormatError(path + ": truncated ZIP central directory");
    e.name.assign(reinterpret_cast<const char*>(c.base + p + 46), name_len);
    // ZIP64 extended information: the 0xFFFFFFFF fields, in order.
    size_t x = p + 46 + name_len, x_end = x + extra_len;
    while (x + 4 <= x_end) {
      uint64_t id = c.u(x, 2), len = c.u(x + 2, 2);
      if (id == 0x0001) {
        size_t q = x + 4;
        if (e.size == 0xFFFFFFFF) e.size = c.u(q, 8), q += 8;
        if (e.compressed_size == 0xFFFFFFFF) e.compressed_size = c.u(q, 8), q += 8;
        if (local == 0xFFFFFFFF) local = c.u(q, 8);
      }
      x += 4 + len;
    }
    if (flags & 0x1) throw UnsupportedError(path + ": encrypted ZIP entry '" + e.name + "'");
    if (c.u(local, 4) != kLocalSig)
      throw FormatError(path + ": corrupt ZIP archive (no local header for '" + e.name + "')");
    e.data_offset = local + 30 + c.u(local + 26, 2) + c.u(local + 28, 2);
    if (e.data_offset > size || e.compressed_size > size - e.data_offset)
      throw FormatError(path + ": truncated ZIP archive (entry '" + e.name + "' needs bytes " +
                        std::to_string(e.data_offset) + ".." +
                        std::to_string(e.data_offset + e.compressed_size) + " of " +
                        std::to_string(size) + ")");
    if (e.method == 0 && e.compressed_size != e.size)
      throw FormatError(path + ": corrupt ZIP entry '" + e.name + "' (stored sizes differ)");
    zip.entries_.push_back(std::move(e));
    p += 46 + name_len + extra_len + comment_len;
  }
  return zip;
}

const ZipArchive::Entry* ZipArchive::find(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

const uint8_t* ZipArchive::stored_data(const Entry& e) const {
  if (e.method != 0)
    throw UnsupportedError(path() + ": entry '" + e.name +
                           "' is compressed; tensor data must be "
                           "stored uncompressed (as torch.jit.save writes it)");
  return file_->data() + e.data_offset;
}

std::string ZipArchive::read(const Entry& e) const {
  const uint8_t* src = file_->data() + e.data_offset;
  if (e.method == 0) return std::string(reinterpret_cast<const char*>(src), e.size);
  if (e.method != 8)
    throw UnsupportedError(path() + ": entry '" + e.name + "' uses ZIP compression method " +
                           std::to_string(e.method) + " (only stored and deflate are supported)");
  // The sizes come from the central directory. DEFLATE expands at most 1032:1, so a larger
  // claim is corrupt — and must not become a multi-GB allocation (fuzz_torchscript: a 3 KB file
  // claiming 4 GB).
  if (e.size > (uint64_t(1) << 32) || e.size > e.compressed_size * 1032 + 1024)
    throw FormatError(path() + ": entry '" + e.name + "' claims an implausible size (" +
                      std::to_string(e.size) + " bytes from " + std::to_string(e.compressed_size) +
                      " compressed)");
  const std::string_view data(reinterpret_cast<const char*>(src), e.compressed_size);
  std::string out = inflate_bytes(data, DeflateWrapper::kRaw, e.size,
                                  path() + ": entry '" + e.name + "'", e.size);
  if (out.size() != e.size)
    throw FormatError(path() + ": corrupt compressed ZIP entry '" + e.name + "' (" +
                      std::to_string(out.size()) + " bytes inflated, " + std::to_string(e.size) +
                      " claimed)");
  return out;
}

}  // namespace csa
