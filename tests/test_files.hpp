// Shared by the tests that work in their own temporary folder or open a report in a browser
// (include after test_support.hpp).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>

namespace kgain::test {

// A fresh folder under the temporary directory for this test process ("kgain-NAME-PID").
inline std::filesystem::path fresh_temp_dir(const std::string& name) {
  const auto d = std::filesystem::temp_directory_path() / ("kgain-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// A folder that `make(folder)` fills (a study's run directory, say), made once per build of the
// test executable for every test that reads it: ctest runs each test case as a process of its
// own, so a static made per process was made again by every test (issue 33). It is named after
// the executable's modification time, so a rebuilt kgain_tests never reads what an older build
// made, and made under a scratch name then renamed, so a test running beside it never reads half
// of it. Readers must not write into it (copy it first).
inline std::string made_once_per_build(const std::string& name,
                                       const std::function<void(const std::filesystem::path&)>& make) {
  namespace fs = std::filesystem;
  const auto stamp = fs::last_write_time("/proc/self/exe").time_since_epoch().count();
  const fs::path top = test_output_dir(), made = top / (name + "-" + std::to_string(stamp));
  if (fs::exists(made)) return made.string();
  for (const auto& e : fs::directory_iterator(top))  // what an older build made
    if (e.path().filename().string().rfind(name + "-", 0) == 0 && e.path() != made &&
        e.path().string().find(".tmp-") == std::string::npos)
      fs::remove_all(e.path());
  const fs::path scratch = made.string() + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(scratch);
  make(scratch);
  std::error_code error;
  fs::rename(scratch, made, error);
  fs::remove_all(scratch);  // when another process renamed its own first: the same folder
  return made.string();
}

// Headless Chromium for the browser checks of the reports, or "" where it is not installed.
inline std::string chromium_path() {
  for (const char* candidate : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (std::filesystem::exists(candidate)) return candidate;
  return "";
}

}  // namespace kgain::test
