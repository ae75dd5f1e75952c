// Named points in the write paths where a test can make the process die or receive a signal, to
// check that every moment of a run leaves its folder resumable. Inert unless the environment sets
// KINDLING_TEST_POINT="<name>[@<n>]:<action>": at the n-th time (default 1st) the point <name> is
// reached, the process raises <action>: kill (SIGKILL), int (SIGINT), term (SIGTERM) or stop
// (SIGSTOP, so a test can act while the run holds its folder). Points: atomic-write (after each
// write into a temporary file), atomic-rename (before a temporary is renamed into place),
// checkpoint-last, checkpoint-best, metrics-line (before each of an epoch's writes), epoch-end
// (after them), batch (after each training step).
#pragma once

namespace kindling {

void test_point(const char* name);

}  // namespace kindling
