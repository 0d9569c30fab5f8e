// Shared by the tests that work in their own temporary folder or open a report in a browser
// (include after test_support.hpp).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace kgain::test {

// A fresh folder under the temporary directory for this test process ("kgain-NAME-PID").
inline std::filesystem::path fresh_temp_dir(const std::string& name) {
  const auto d = std::filesystem::temp_directory_path() / ("kgain-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// Headless Chromium for the browser checks of the reports, or "" where it is not installed.
inline std::string chromium_path() {
  for (const char* candidate : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (std::filesystem::exists(candidate)) return candidate;
  return "";
}

}  // namespace kgain::test
