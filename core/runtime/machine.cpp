#include "runtime/machine.hpp"

#include <algorithm>
#include <thread>

#include <unistd.h>

namespace kgain::core {

int hardware_threads() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

std::string host_name() {
  char host[256] = "?";
  if (::gethostname(host, sizeof host - 1) != 0) return "?";
  host[sizeof host - 1] = '\0';
  return host;
}

}  // namespace kgain::core
