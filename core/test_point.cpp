#include "core/test_point.h"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace kindling {

namespace {

struct Plan {
  std::string name;
  long occurrence = 1;
  int signal = 0;  // 0: no plan
};

Plan read_plan() {
  Plan plan;
  const char* text = std::getenv("KINDLING_TEST_POINT");
  if (!text || !*text) return plan;
  const std::string spec = text;
  const size_t colon = spec.rfind(':');
  if (colon == std::string::npos) return plan;
  const std::string action = spec.substr(colon + 1);
  std::string point = spec.substr(0, colon);
  if (const size_t at = point.find('@'); at != std::string::npos) {
    plan.occurrence = std::atol(point.c_str() + at + 1);
    point.resize(at);
  }
  plan.name = point;
  if (action == "kill") plan.signal = SIGKILL;
  if (action == "int") plan.signal = SIGINT;
  if (action == "term") plan.signal = SIGTERM;
  if (action == "stop") plan.signal = SIGSTOP;
  return plan;
}

}  // namespace

void test_point(const char* name) {
  static const Plan plan = read_plan();
  if (plan.signal == 0 || plan.name != name) return;
  static std::mutex mutex;
  static long seen = 0;
  std::lock_guard<std::mutex> lock(mutex);
  if (++seen == plan.occurrence) std::raise(plan.signal);
}

}  // namespace kindling
