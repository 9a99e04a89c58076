#include "csa/core/compress.h"

#include <zlib.h>

#include <algorithm>
#include <limits>

#include "csa/core/error.h"

namespace csa {

bool is_gzip(std::string_view bytes) {
  return bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b && bytes[2] == 8;
}

std::string inflate_bytes(std::string_view in, DeflateWrapper wrapper, size_t max_out,
                          const std::string& origin, size_t size_hint) {
  const bool gz = wrapper == DeflateWrapper::kGzip;
  const std::string what = gz ? "gzip" : "DEFLATE";
  z_stream zs{};
  if (inflateInit2(&zs, gz ? 16 + MAX_WBITS : -MAX_WBITS) != Z_OK)
    throw IoError(origin + ": zlib init failed");
  constexpr size_t kChunk = size_t(1) << 30;  // zlib counts bytes in uInt
  // Output room up to one byte past max_out: a stream that fills it is too large.
  const size_t cap = max_out < std::numeric_limits<size_t>::max() ? max_out + 1 : max_out;
  std::string out;
  size_t fed = 0;  // input bytes handed to zlib
  try {
    while (true) {
      if (zs.avail_in == 0 && fed < in.size()) {
        const size_t n = std::min(in.size() - fed, kChunk);
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + fed));
        zs.avail_in = static_cast<uInt>(n);
        fed += n;
      }
      const size_t want = out.size() < size_hint ? size_hint + 1 - out.size()
                                                 : std::max<size_t>(out.size(), size_t(1) << 16);
      const size_t room = std::min({want, kChunk, cap - out.size()});
      const size_t had = out.size();
      out.resize(had + room);
      zs.next_out = reinterpret_cast<Bytef*>(out.data() + had);
      zs.avail_out = static_cast<uInt>(room);
      const int rc = inflate(&zs, Z_NO_FLUSH);
      out.resize(had + room - zs.avail_out);
      if (out.size() > max_out)
        throw FormatError(origin + ": " + what + " data inflates past " + std::to_string(max_out) +
                          " bytes");
      const bool input_left = zs.avail_in > 0 || fed < in.size();
      if (rc == Z_STREAM_END) {
        if (!input_left) break;
        if (!gz) throw FormatError(origin + ": bytes after the end of the " + what + " data");
        // gzip allows members one after another
        if (inflateReset(&zs) != Z_OK) throw IoError(origin + ": zlib reset failed");
        continue;
      }
      if (rc == Z_BUF_ERROR && !input_left)
        throw FormatError(origin + ": " + what + " data ends early (truncated)");
      if (rc != Z_OK && rc != Z_BUF_ERROR)
        throw FormatError(origin + ": corrupt " + what + " data" +
                          (zs.msg != nullptr ? std::string(" (") + zs.msg + ")" : std::string()));
    }
  } catch (...) {
    inflateEnd(&zs);
    throw;
  }
  inflateEnd(&zs);
  return out;
}

std::string inflate_if_gzip(std::string bytes, size_t max_out, const std::string& origin) {
  if (!is_gzip(bytes)) return bytes;
  return inflate_bytes(bytes, DeflateWrapper::kGzip, max_out, origin);
}

std::string gzip_bytes(std::string_view in) {
  if (in.size() > std::numeric_limits<uInt>::max())
    throw UsageError("gzip: " + std::to_string(in.size()) + " bytes is more than one call takes");
  z_stream zs{};
  if (deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw IoError("gzip: zlib init failed");
  std::string out(deflateBound(&zs, static_cast<uLong>(in.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  const size_t n = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw IoError("gzip: zlib deflate failed");
  out.resize(n);
  return out;
}

}  // namespace csa
