// Logging from a plugin: messages join kgain's own log (the console, and the run's kgain.log)
// with the plugin's name in front, instead of going to std::cerr on their own.
//
//   kgain::log(kgain::LogLevel::warning, "torchscript", "the optimized network disagrees ...");
//
// When the core loads a library it installs its sink through the library's exported
// `kgain_set_log_sink` (defined by KGAIN_LIBRARY); a plugin used outside the core (a test, a
// fuzz target, a tool) writes "kgain <source>: <level>: <message>" to stderr instead. A library
// built before this header existed has no such export and is still loaded.
// A dataset's findings about the data (images without a group, say) belong in
// Dataset::warnings(), which also reaches run.json and the report; the log is for the rest.
// Threads: safe from any thread (the core's sink is thread-safe; it is installed before the
// library's plugins are created).
#pragma once

#include <cstdio>
#include <string>

namespace kgain {

enum class LogLevel : int { debug = 0, info = 1, warning = 2, error = 3 };

// Where a library's messages go: `source` names the plugin, `message` is one line.
using LogSink = void (*)(LogLevel level, const char* source, const char* message);

inline const char* to_string(LogLevel level) {
  switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warning: return "warning";
    case LogLevel::error: return "error";
  }
  return "?";
}

namespace detail {
// The sink of this library. Hidden, so that every library (and the core) keeps its own and no
// library's copy is resolved to another's.
__attribute__((visibility("hidden"))) inline LogSink& library_log_sink() {
  static LogSink sink = nullptr;
  return sink;
}
}  // namespace detail

inline void log(LogLevel level, const std::string& source, const std::string& message) {
  if (LogSink sink = detail::library_log_sink())
    sink(level, source.c_str(), message.c_str());
  else
    std::fprintf(stderr, "kgain %s: %s: %s\n", source.c_str(), to_string(level), message.c_str());
}

}  // namespace kgain
