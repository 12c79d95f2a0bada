#include "common/memory_size.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <string>

namespace ondol {

std::string MemorySize::to_string() const {
  return fraction > 0 ? fmt::format("{}%", fraction * 100) : std::to_string(bytes);
}

Result<MemorySize> parse_memory_size(std::string_view text) {
  auto bad = [&] {
    return make_error(fmt::format(
        "'{}' is not a memory size (bytes, a unit such as 512MiB or 4GB, or a percentage of "
        "available memory such as 25%)",
        text));
  };
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || !std::isfinite(value) || value < 0) return bad();
  std::string unit;
  for (const char* p = end; p != text.data() + text.size(); ++p) {
    if (!std::isspace(static_cast<unsigned char>(*p)))
      unit.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(*p))));
  }
  MemorySize out;
  if (unit == "%") {
    if (value <= 0 || value > 100) return make_error(fmt::format("'{}': a percentage must be in (0, 100]", text));
    out.fraction = value / 100;
    return out;
  }
  if (!unit.empty() && unit.back() == 'b') unit.pop_back();
  double scale = 0;
  if (unit.empty()) scale = 1;
  else if (unit == "k") scale = 1e3;
  else if (unit == "m") scale = 1e6;
  else if (unit == "g") scale = 1e9;
  else if (unit == "t") scale = 1e12;
  else if (unit == "ki") scale = 1024.0;
  else if (unit == "mi") scale = 1024.0 * 1024;
  else if (unit == "gi") scale = 1024.0 * 1024 * 1024;
  else if (unit == "ti") scale = 1024.0 * 1024 * 1024 * 1024;
  else return bad();
  const double bytes = value * scale;
  if (bytes > 9e18) return bad();
  out.bytes = static_cast<int64_t>(bytes);
  return out;
}

int64_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "MemAvailable:") return kb * 1024;
  }
  return 0;
}

}  // namespace ondol
