#include "apps/signals.h"

#include <atomic>
#include <csignal>

namespace kindling::app {

namespace {

std::atomic<int> g_stop_signal{0};
struct sigaction g_previous_int, g_previous_term;

void on_stop_signal(int signal) {
  g_stop_signal.store(signal);
  // A second signal of this kind takes the default action (terminate) at once.
  std::signal(signal, SIG_DFL);
}

}  // namespace

std::string Interrupted::signal_name(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  return "signal " + std::to_string(signal);
}

StopOnSignals::StopOnSignals() {
  g_stop_signal.store(0);
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // reads and writes in progress carry on
  sigaction(SIGINT, &action, &g_previous_int);
  sigaction(SIGTERM, &action, &g_previous_term);
}

StopOnSignals::~StopOnSignals() {
  sigaction(SIGINT, &g_previous_int, nullptr);
  sigaction(SIGTERM, &g_previous_term, nullptr);
}

int stop_requested() { return g_stop_signal.load(); }

}  // namespace kindling::app
