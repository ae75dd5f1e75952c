#include "core/spec.h"

#include "core/error.h"

#include <cmath>
#include <cstdlib>

namespace kindling {
namespace {

std::string trim(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

}  // namespace

std::string spec_name(const std::string& text) { return trim(text.substr(0, text.find(':'))); }

std::vector<std::string> split_list(const std::string& text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(separator, start);
    parts.push_back(trim(text.substr(start, end - start)));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

Spec parse_spec(const std::string& text, const std::string& context, const std::string& hint) {
  Spec spec{spec_name(text), {}};
  const size_t colon = text.find(':');
  if (colon == std::string::npos) return spec;
  for (const std::string& item : split_list(text.substr(colon + 1), ',')) {
    if (item.empty()) continue;
    const size_t equals = item.find('=');
    const std::string key = equals == std::string::npos ? "" : trim(item.substr(0, equals));
    KINDLING_CHECK(!key.empty(), ValueError, "{}: expected key=value, got '{}'{}", context, item, hint);
    for (const auto& [seen, value] : spec.options)
      KINDLING_CHECK(seen != key, ValueError, "{}: {} is given twice", context, key);
    spec.options.emplace_back(key, trim(item.substr(equals + 1)));
  }
  return spec;
}

std::optional<double> parse_finite(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

}  // namespace kindling
