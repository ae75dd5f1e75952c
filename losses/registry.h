// The loss registry: every loss kindling studies, with its one-line formula, its hyperparameters
// (key, type, range, default), its source and the decisions taken where the paper is silent.
// losses/loss.cpp parses `name[:key=value,...]` against it; `kindling losses` prints it.
#pragma once
#include "losses/loss_desc.h"

#include <string>
#include <vector>

namespace kindling {

enum class ParamType {
  number,          // a real number in [min, max] (min excluded when min_open)
  base,            // a logarithm base: a number or `e`, > 0 and != 1
  number_list,     // numbers separated by '/', each in [min, max]
  number_or_auto,  // a number in range, or `auto` (chosen from the class count)
};

struct HyperParam {
  const char* key;
  ParamType type;
  const char* default_text;  // as written in a spec: "2", "e", "0/0.5", "auto"
  double min, max;
  bool min_open;  // min itself is not allowed
  const char* help;
};

struct LossInfo {
  const char* name;
  LossKind kind;
  const char* formula;  // one line, with the gradient where it is short
  std::vector<HyperParam> params;
  const char* source;
  const char* notes;  // decisions and traits a user must know; may be ""
};

// Every loss, in the order of docs/losses.md.
const std::vector<LossInfo>& loss_registry();
// The entry named `name`; ValueError listing the valid names when there is none.
const LossInfo& find_loss(const std::string& name);
const LossInfo& loss_info(LossKind kind);
// "ce, label_smoothing, ..." for messages.
std::string loss_names();
// The text `kindling losses` prints: each loss, its formula, hyperparameters, source, decisions.
std::string losses_help();

}  // namespace kindling
