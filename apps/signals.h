// SIGINT and SIGTERM stop a run cleanly: the handler only records the signal; the trainer looks at
// it between steps and between files, so a checkpoint or log being written is finished (whole,
// renamed into place) before the run stops, and no temporary is left. A second signal of the
// same kind kills at once, as usual. The command prints one line saying where it stopped and what
// to resume from, and exits 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
#pragma once
#include "core/error.h"

#include <string>

namespace kindling::app {

// Thrown by the trainer when a stop was requested. Its message is the one line the command
// prints: "stopped by SIGINT in epoch 3 at batch 17 of 390; resume with --resume run/last.safetensors ...".
struct Interrupted : Error {
  struct Where {
    std::string where;        // "in epoch 3 at batch 17 of 390", "after epoch 3"
    std::string resume_hint;  // what to resume from
  };
  Interrupted(int signal, Where place)
      : Error(fmt::format("stopped by {} {}; {}", signal_name(signal), place.where, place.resume_hint)),
        signal(signal),
        place(std::move(place)) {}
  int signal;
  Where place;
  static std::string signal_name(int signal);
};

// Installs the handlers for its lifetime and restores the previous ones after.
class StopOnSignals {
 public:
  StopOnSignals();
  ~StopOnSignals();
  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;
};

// The signal that asked the run to stop, or 0.
int stop_requested();

// Throws Interrupted(signal, where()) when a stop was requested; where() returns an Interrupted::Where.
template <typename Where>
void stop_if_requested(Where&& where) {
  if (const int signal = stop_requested()) throw Interrupted(signal, where());
}

// The exit code for an interrupted command: 128 + the signal number.
inline int exit_code(const Interrupted& e) { return 128 + e.signal; }

}  // namespace kindling::app
