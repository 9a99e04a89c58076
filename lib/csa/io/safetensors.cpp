#include "csa/io/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "csa/core/error.h"

namespace csa {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the reference implementation's limit

at::ScalarType dtype_from_name(const std::string& name, const std::string& where) {
  if (name == "F32") return at::kFloat;
  if (name == "F16") return at::kHalf;
  if (name == "BF16") return at::kBFloat16;
  if (name == "F64") return at::kDouble;
  if (name == "I64") return at::kLong;
  if (name == "I32") return at::kInt;
  if (name == "I16") return at::kShort;
  if (name == "I8") return at::kChar;
  if (name == "U8") return at::kByte;
  if (name == "BOOL") return at::kBool;
  throw FormatError(where + ": unknown or unsupported dtype '" + name +
                    "' (supported: F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL)");
}

std::string dtype_to_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return "F32";
    case at::kHalf:
      return "F16";
    case at::kBFloat16:
      return "BF16";
    case at::kDouble:
      return "F64";
    case at::kLong:
      return "I64";
    case at::kInt:
      return "I32";
    case at::kShort:
      return "I16";
    case at::kChar:
      return "I8";
    case at::kByte:
      return "U8";
    case at::kBool:
      return "BOOL";
    default:
      throw UnsupportedError(std::string("safetensors: cannot store dtype ") + c10::toString(t));
  }
}

}  // namespace

SafetensorsFile parse_safetensors(std::shared_ptr<const MappedFile> file) {
  const std::string& path = file->path();
  const size_t size = file->size();
  if (size < 8)
    throw FormatError(path + ": not a safetensors file: " + std::to_string(size) +
                      " bytes, shorter than the 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | file->data()[i];
  if (header_len > size - 8)
    throw FormatError(path + ": safetensors header length " + std::to_string(header_len) +
                      " runs past the end of the file (" + std::to_string(size) +
                      " bytes): truncated or not a safetensors file");
  if (header_len > kMaxHeaderBytes)
    throw FormatError(path + ": safetensors header length " + std::to_string(header_len) +
                      " exceeds the 100 MB limit");
  const size_t data_start = 8 + header_len;
  const size_t data_size = size - data_start;
  Json header = parse_json(file->view().substr(8, header_len), path + " (safetensors header)");
  if (!header.is_object()) throw FormatError(path + ": safetensors header is not a JSON object");

  SafetensorsFile out;
  struct Span {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      out.metadata = it.value();
      continue;
    }
    const std::string where = path + ": tensor '" + name + "'";
    const Json& e = it.value();
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") ||
        !e.contains("data_offsets"))
      throw FormatError(where + ": header entry needs dtype, shape and data_offsets");
    if (!e["dtype"].is_string()) throw FormatError(where + ": dtype is not a string");
    at::ScalarType dtype = dtype_from_name(e["dtype"].get<std::string>(), where);
    const Json& js = e["shape"];
    if (!js.is_array()) throw FormatError(where + ": shape is not an array");
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    for (const auto& d : js) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
        throw FormatError(where + ": shape " + js.dump() + " has a non-integer or negative dim");
      uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && numel > (uint64_t(1) << 62) / dim)
        throw FormatError(where + ": shape " + js.dump() + " is too large");
      numel *= dim;
      shape.push_back(static_cast<int64_t>(dim));
    }
    const Json& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned())
      throw FormatError(where + ": data_offsets must be two non-negative integers, got " +
                        off.dump());
    uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end)
      throw FormatError(where + ": data_offsets [" + std::to_string(begin) + ", " +
                        std::to_string(end) + "] end before they begin");
    if (end > data_size)
      throw FormatError(where + ": data_offsets [" + std::to_string(begin) + ", " +
                        std::to_string(end) + "] run past the end of the data (" +
                        std::to_string(data_size) + " bytes): truncated file?");
    // numel <= 2^62, but numel x 8 bytes can still wrap: compare in elements.
    const uint64_t elem = element_size(dtype);
    if ((end - begin) % elem != 0 || (end - begin) / elem != numel)
      throw FormatError(where + ": shape " + js.dump() + " x " + e["dtype"].get<std::string>() +
                        " needs " +
                        (numel <= UINT64_MAX / elem ? std::to_string(numel * elem) : "over 2^64") +
                        " bytes but data_offsets span " + std::to_string(end - begin));
    spans.push_back({begin, end, name});
    out.tensors[name] =
        StoredTensor{tensor_view(file, file->data() + data_start + begin, dtype, shape), where};
  }
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.begin < b.begin; });
  size_t widest = 0;  // the span reaching furthest so far
  for (size_t i = 1; i < spans.size(); ++i) {
    if (spans[i].begin < spans[widest].end && spans[i].end > spans[i].begin)
      throw FormatError(path + ": tensors '" + spans[widest].name + "' and '" + spans[i].name +
                        "' overlap in the data section");
    if (spans[i].end > spans[widest].end) widest = i;
  }
  return out;
}

SafetensorsFile read_safetensors(const std::string& path) {
  return parse_safetensors(MappedFile::open(path));
}

void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const Json& metadata) {
  Json header = Json::object();
  if (!metadata.is_null()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<at::Tensor> contiguous;
  for (const auto& [name, t] : tensors) {
    at::Tensor c = t.contiguous().cpu();
    uint64_t nbytes = static_cast<uint64_t>(c.numel()) * element_size(c.scalar_type());
    header[name] = {{"dtype", dtype_to_name(c.scalar_type())},
                    {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    contiguous.push_back(c);
  }
  std::string head = header.dump();
  while ((head.size() + 8) % 8 != 0) head.push_back(' ');
  std::string blob;
  blob.reserve(8 + head.size() + offset);
  uint64_t n = head.size();
  for (int i = 0; i < 8; ++i) blob.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  blob += head;
  for (const auto& c : contiguous)
    blob.append(static_cast<const char*>(c.data_ptr()),
                static_cast<size_t>(c.numel()) * element_size(c.scalar_type()));
  write_file_atomic(path, blob);
}

}  // namespace csa
