// The machine a run is on, as kgain's defaults and messages name it. Threads: safe anywhere.
#pragma once

#include <string>

namespace kgain::core {

// The hardware threads the system reports, at least 1 (std::thread says 0 when it cannot tell).
int hardware_threads();
// This host's name ("?" when the system gives none): run-directory locks and cluster checks
// name who holds what.
std::string host_name();

}  // namespace kgain::core
