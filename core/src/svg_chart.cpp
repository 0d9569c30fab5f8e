#include "kgain/core/svg_chart.hpp"

#include <algorithm>
#include <cmath>
#include <vector>
#include <cstdio>
#include <limits>
#include <sstream>

namespace kgain::core {
namespace {

std::string fmt(double v, const char* f = "%.1f") {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// 4-7 "nice" ticks covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi) {
  const double span = hi - lo;
  const double raw = span / 5.0;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (raw <= m * magnitude) {
      step = m * magnitude;
      break;
    }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

std::string tick_label(double v) {
  const double a = std::abs(v);
  if (a >= 1e6) return fmt(v / 1e6, "%gM");
  if (a >= 1e3) return fmt(v / 1e3, "%gk");
  return fmt(v, "%g");
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string SvgChart::render(int width, int height) const {
  const double left = 64, right = 200, top = 34, bottom = 58;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  const auto tx = [&](double x) { return log_x_ ? std::log10(std::max(x, 1e-12)) : x; };

  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  const auto extend_y = [&](double v) {
    if (std::isfinite(v)) y_lo = std::min(y_lo, v), y_hi = std::max(y_hi, v);
  };
  for (const auto& s : series_) {
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      x_lo = std::min(x_lo, tx(s.x[i]));
      x_hi = std::max(x_hi, tx(s.x[i]));
      extend_y(s.y[i]);
      if (i < s.low.size()) extend_y(s.low[i]), extend_y(s.high[i]);
    }
  }
  if (zero_line_) extend_y(0.0);
  std::ostringstream svg;
  svg << "<svg class=\"kgain-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << ' ' << height << "\" role=\"img\" aria-label=\"" << html_escape(title_) << "\">\n";
  svg << "<rect x=\"0\" y=\"0\" width=\"" << width << "\" height=\"" << height << "\" fill=\"#ffffff\"/>\n";
  svg << "<text x=\"" << left << "\" y=\"20\" font-size=\"14\" font-weight=\"bold\" fill=\"#222\">" << html_escape(title_) << "</text>\n";
  if (!std::isfinite(x_lo) || !std::isfinite(y_lo)) {
    svg << "<text x=\"" << left << "\" y=\"" << top + plot_h / 2 << "\" fill=\"#888\">no data</text></svg>\n";
    return svg.str();
  }
  if (x_hi == x_lo) x_hi = x_lo + 1;
  if (y_hi == y_lo) y_hi = y_lo + 1e-3, y_lo -= 1e-3;
  const double pad = (y_hi - y_lo) * 0.06;
  y_lo -= pad;
  y_hi += pad;
  const auto px = [&](double x) { return left + (tx(x) - x_lo) / (x_hi - x_lo) * plot_w; };
  const auto py = [&](double y) { return top + (1.0 - (y - y_lo) / (y_hi - y_lo)) * plot_h; };

  // Axes, grid and ticks.
  svg << "<g font-size=\"11\" fill=\"#444\">\n";
  for (double t : nice_ticks(y_lo, y_hi)) {
    svg << "<line x1=\"" << left << "\" x2=\"" << left + plot_w << "\" y1=\"" << py(t) << "\" y2=\"" << py(t)
        << "\" stroke=\"#e5e5e5\"/><text x=\"" << left - 6 << "\" y=\"" << py(t) + 4 << "\" text-anchor=\"end\">" << tick_label(t) << "</text>\n";
  }
  if (zero_line_) svg << "<line x1=\"" << left << "\" x2=\"" << left + plot_w << "\" y1=\"" << py(0) << "\" y2=\"" << py(0) << "\" stroke=\"#888\"/>\n";
  if (!x_ticks_.empty()) {
    const std::size_t every = std::max<std::size_t>(1, x_ticks_.size() / 12);
    for (std::size_t i = 0; i < x_ticks_.size(); i += every)
      svg << "<text transform=\"translate(" << px(static_cast<double>(i)) << ',' << top + plot_h + 12 << ") rotate(35)\">"
          << html_escape(x_ticks_[i]) << "</text>\n";
  } else if (log_x_) {
    // Every decade; on an axis spanning fewer than two, also 2x and 5x, so that it never shows
    // a lone label (MobileNetV2's MACs at 96 px run from 2 M to 55 M).
    const std::vector<double> steps = x_hi - x_lo < 2 ? std::vector<double>{1, 2, 5} : std::vector<double>{1};
    for (double e = std::floor(x_lo); e <= x_hi; e += 1)
      for (double m : steps) {
        const double v = m * std::pow(10, e);
        if (std::log10(v) < x_lo - 1e-9 || std::log10(v) > x_hi + 1e-9) continue;
        svg << "<line x1=\"" << px(v) << "\" x2=\"" << px(v) << "\" y1=\"" << top << "\" y2=\"" << top + plot_h
            << "\" stroke=\"#f0f0f0\"/><text x=\"" << px(v) << "\" y=\"" << top + plot_h + 16 << "\" text-anchor=\"middle\">"
            << tick_label(v) << "</text>\n";
      }
  } else {
    for (double t : nice_ticks(x_lo, x_hi))
      svg << "<text x=\"" << px(t) << "\" y=\"" << top + plot_h + 16 << "\" text-anchor=\"middle\">" << tick_label(t) << "</text>\n";
  }
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << plot_w << "\" height=\"" << plot_h << "\" fill=\"none\" stroke=\"#999\"/>\n";
  svg << "<text x=\"" << left + plot_w / 2 << "\" y=\"" << height - 6 << "\" text-anchor=\"middle\">" << html_escape(x_label_) << "</text>\n";
  svg << "<text transform=\"translate(14," << top + plot_h / 2 << ") rotate(-90)\" text-anchor=\"middle\">" << html_escape(y_label_)
      << "</text>\n</g>\n";

  // Series: band, line, markers; legend on the right.
  for (std::size_t k = 0; k < series_.size(); ++k) {
    const auto& s = series_[k];
    if (!s.low.empty()) {
      std::ostringstream band;
      for (std::size_t i = 0; i < s.x.size(); ++i)
        if (std::isfinite(s.high[i])) band << (band.tellp() == 0 ? "M" : " L") << px(s.x[i]) << ',' << py(s.high[i]);
      for (std::size_t i = s.x.size(); i-- > 0;)
        if (std::isfinite(s.low[i])) band << " L" << px(s.x[i]) << ',' << py(s.low[i]);
      if (band.tellp() > 0) svg << "<path class=\"band\" d=\"" << band.str() << " Z\" fill=\"" << s.color << "\" fill-opacity=\"0.18\" stroke=\"none\"/>\n";
    }
    std::ostringstream line;
    bool pen_down = false;
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i])) {
        pen_down = false;
        continue;
      }
      line << (pen_down ? " L" : " M") << px(s.x[i]) << ',' << py(s.y[i]);
      pen_down = true;
    }
    svg << "<path class=\"line\" d=\"" << line.str() << "\" fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"2\""
        << (s.dashed ? " stroke-dasharray=\"5,4\"" : "") << "/>\n";
    for (std::size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.y[i]))
        svg << "<circle class=\"mark\" cx=\"" << px(s.x[i]) << "\" cy=\"" << py(s.y[i]) << "\" r=\"3\" fill=\"" << s.color << "\"><title>"
            << html_escape(s.name) << ": " << fmt(s.y[i], "%.4f") << "</title></circle>\n";
    const double ly = top + 8 + 18.0 * static_cast<double>(k);
    svg << "<line x1=\"" << left + plot_w + 12 << "\" x2=\"" << left + plot_w + 32 << "\" y1=\"" << ly << "\" y2=\"" << ly << "\" stroke=\""
        << s.color << "\" stroke-width=\"2\"" << (s.dashed ? " stroke-dasharray=\"5,4\"" : "") << "/><text x=\"" << left + plot_w + 36
        << "\" y=\"" << ly + 4 << "\" font-size=\"11\" fill=\"#222\">" << html_escape(s.name) << "</text>\n";
  }
  for (const auto& m : marks_) {
    if (!std::isfinite(m.y)) continue;
    svg << "<circle class=\"mark annotation\" cx=\"" << px(m.x) << "\" cy=\"" << py(m.y) << "\" r=\"7\" fill=\"none\" stroke=\"" << m.color
        << "\" stroke-width=\"2\"/><text x=\"" << px(m.x) + 9 << "\" y=\"" << py(m.y) - 9 << "\" font-size=\"11\" fill=\"" << m.color << "\">"
        << html_escape(m.label) << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace kgain::core
