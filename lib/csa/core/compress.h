// zlib's DEFLATE in the two wrappers csa reads: raw (ZIP entries of TorchScript archives) and
// gzip (any JSON input: a policy or sweep stored as .json.gz; a .json.gz output path writes one).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace csa {

enum class DeflateWrapper { kRaw, kGzip };

// Whether `bytes` starts like a gzip stream (magic 1f 8b, method 8: DEFLATE).
bool is_gzip(std::string_view bytes);

// Inflates the whole of `in` (one stream; for gzip, members concatenated as gzip allows). Throws
// FormatError naming `origin` when the data is corrupt or truncated, when bytes follow a raw
// stream's end, or when the output would pass `max_out` bytes (a decompression bomb stops at
// the limit). `size_hint`: the expected output size (a ZIP entry's), reserved at once.
std::string inflate_bytes(std::string_view in, DeflateWrapper wrapper, size_t max_out,
                          const std::string& origin, size_t size_hint = 0);

// `bytes` inflated (inflate_bytes, gzip, at most `max_out`) when they are gzipped (is_gzip), else
// as they are: how a JSON input is read, whatever its name.
std::string inflate_if_gzip(std::string bytes, size_t max_out, const std::string& origin);

// gzip of `in` at level 9, header without a name or a time stamp: the same bytes for the same
// input.
std::string gzip_bytes(std::string_view in);

}  // namespace csa
