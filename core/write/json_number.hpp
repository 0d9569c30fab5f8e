// A number for the JSON files kgain writes: JSON has no NaN, so an undefined value (a gain
// without pretrained weights, a p-value without replicates) is written as null.
// Threads: a pure function.
#pragma once

#include <cmath>

#include <nlohmann/json.hpp>

namespace kgain::core {

inline nlohmann::json json_number(double v) { return std::isnan(v) ? nlohmann::json() : nlohmann::json(v); }

}  // namespace kgain::core
