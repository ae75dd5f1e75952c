// Spec strings `name[:key=value,...]`: how a loss (losses/loss.h) or a learning-rate schedule
// (nn/schedule.h) is written on the command line, e.g. "focal:gamma=2,alpha=0.25" or
// "multistep:milestones=100/150,gamma=0.1". A value may itself be a list separated by '/'.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kindling {

struct Spec {
  std::string name;                                          // the text before ':', trimmed
  std::vector<std::pair<std::string, std::string>> options;  // key, value: trimmed, in order given
};

// The name of a spec: the text before the first ':', trimmed of spaces and tabs.
std::string spec_name(const std::string& text);

// Splits `text` at ':' and ','; empty items are skipped. Throws ValueError
// "<context>: expected key=value, got '<item>'<hint>" for an item without '=' or with an empty key,
// and "<context>: <key> is given twice".
Spec parse_spec(const std::string& text, const std::string& context, const std::string& hint = "");

// "0/0.5/1" -> {"0", "0.5", "1"}, each piece trimmed.
std::vector<std::string> split_list(const std::string& text, char separator = '/');

// The whole of `text` as a finite number, or nothing.
std::optional<double> parse_finite(const std::string& text);

}  // namespace kindling
