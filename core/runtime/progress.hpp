// Progress: one self-updating line on stderr (done/total, rate, time left) for long loops,
// drawn only when stderr is a terminal, so logs and CI output stay clean.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace kgain::core {

class Progress {
 public:
  // `what` names the work ("features"), `unit` the items ("images").
  Progress(std::string what, std::string unit, std::int64_t total);
  ~Progress();
  void advance(std::int64_t items);
  // Globally off (kgain run --quiet).
  static void enable(bool on);

 private:
  void draw(bool final);
  std::string what_, unit_;
  std::int64_t total_, done_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool active_;
};

}  // namespace kgain::core
