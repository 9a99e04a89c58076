#include "csa/tools/baseline.h"

#include <stdexcept>
#include <utility>
#include <vector>

#include "csa/core/error.h"

namespace csa {

SparsitySpec parse_baseline(const std::string& text, int64_t n_layer, int64_t n_head) {
  // key:value pairs separated by commas; the first key names the kind.
  std::vector<std::pair<std::string, std::string>> kv;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t colon = item.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == item.size())
      throw UsageError("--baseline '" + text +
                       "': expected key:value items, e.g. uniform:64, "
                       "topp:0.9, window:256,sinks:4, strided:64,window:64");
    kv.emplace_back(item.substr(0, colon), item.substr(colon + 1));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  auto number = [&](const std::string& v) {
    try {
      size_t used = 0;
      double d = std::stod(v, &used);
      if (used != v.size()) throw std::invalid_argument(v);
      return d;
    } catch (const std::exception&) {
      throw UsageError("--baseline '" + text + "': '" + v + "' is not a number");
    }
  };
  auto option = [&](const std::string& key, int64_t fallback) {
    for (size_t i = 1; i < kv.size(); ++i)
      if (kv[i].first == key) return static_cast<int64_t>(number(kv[i].second));
    return fallback;
  };
  for (size_t i = 1; i < kv.size(); ++i)
    if (kv[i].first != "sinks" && kv[i].first != "window")
      throw UsageError("--baseline '" + text + "': unknown option '" + kv[i].first + "'");
  const std::string& kind = kv[0].first;
  const double value = number(kv[0].second);
  if (kind == "uniform")
    return SparsitySpec::uniform_top_k(n_layer, n_head, static_cast<int64_t>(value));
  if (kind == "topp" || kind == "top_p") return SparsitySpec::top_p(n_layer, n_head, value);
  if (kind == "window")
    return SparsitySpec::local_window(static_cast<int64_t>(value), option("sinks", 4));
  if (kind == "strided")
    return SparsitySpec::strided(static_cast<int64_t>(value),
                                 option("window", static_cast<int64_t>(value)), option("sinks", 0));
  throw UsageError("--baseline '" + text + "': unknown kind '" + kind +
                   "' (uniform, topp, window, strided)");
}

}  // namespace csa
