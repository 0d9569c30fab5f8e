#include "runtime/progress.hpp"

#include <cstdio>

#include <unistd.h>

namespace kgain::core {
namespace {
bool enabled = true;

std::string duration(double seconds) {
  char buf[32];
  const int s = static_cast<int>(seconds + 0.5);
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%dh%02dm", s / 3600, (s / 60) % 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%dm%02ds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ds", s);
  return buf;
}
}  // namespace

void Progress::enable(bool on) { enabled = on; }

Progress::Progress(std::string what, std::string unit, std::int64_t total)
    : what_(std::move(what)),
      unit_(std::move(unit)),
      total_(total),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_),
      active_(enabled && total > 0 && ::isatty(STDERR_FILENO)) {}

Progress::~Progress() {
  if (active_ && done_ > 0 && done_ < total_) draw(true);  // interrupted: end the line
}

void Progress::advance(std::int64_t items) {
  done_ += items;
  if (!active_) return;
  const auto now = std::chrono::steady_clock::now();
  if (done_ < total_ && now - last_draw_ < std::chrono::milliseconds(200)) return;
  last_draw_ = now;
  draw(done_ >= total_);
}

void Progress::draw(bool final) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? done_ / elapsed : 0;
  const std::string left = rate > 0 && done_ < total_ ? ", " + duration((total_ - done_) / rate) + " left" : "";
  std::fprintf(stderr, "\r\033[K%s: %lld/%lld %s, %.1f %s/s, %s%s%s", what_.c_str(), static_cast<long long>(done_),
               static_cast<long long>(total_), unit_.c_str(), rate, unit_.c_str(), duration(elapsed).c_str(),
               left.c_str(), final ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace kgain::core
