// What the run report and the comparison reports share: colours, the page style, number
// formatting. Private to core/write (not installed).
#pragma once

#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace kgain::core::report_parts {

inline const char* palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b",
                                "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#d62728"};

inline double num(const nlohmann::json& v) {
  return v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN();
}

inline std::string fixed(double v, int digits = 4) {
  if (std::isnan(v)) return "–";
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(digits);
  s << v;
  return s.str();
}

inline const char* style = R"(<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:15px}
.charts{display:flex;flex-wrap:wrap;gap:12px}.charts svg{border:1px solid #eee}
table{border-collapse:collapse;font-size:12px;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}
th{background:#f5f5f5}td.l,th.l{text-align:left}tr.sweet td{background:#fff6e0}pre{background:#f7f7f7;padding:10px;font-size:12px;overflow:auto}
.note{color:#555;font-size:13px}td.win{background:#e8f4e8}td{white-space:nowrap}
</style>)";

}  // namespace kgain::core::report_parts
