#include "write/svg_chart.hpp"

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
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
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

namespace {

// Where the legend goes: beside the plot when its longest name fits in a third of the width,
// else in rows under the chart (which grows to hold them), so that no name is ever cut.
struct LegendLayout {
  bool below = false;
  double right = 0;                             // the margin right of the plot
  std::vector<std::vector<std::string>> lines;  // per series, the name wrapped to fit
  double extra_height = 0;
};

LegendLayout layout_legend(const std::vector<ChartSeries>& series, int width, double left) {
  constexpr double char_width = 6.6;  // 11 px sans-serif, a generous average
  LegendLayout out;
  std::size_t longest = 0;
  for (const auto& s : series) longest = std::max(longest, s.name.size());
  const double beside = 36 + char_width * static_cast<double>(longest) + 12;
  if (beside <= width / 3.0) {
    out.right = std::max(120.0, beside);
    for (const auto& s : series) out.lines.push_back({s.name});
    return out;
  }
  out.below = true;
  out.right = 24;
  const auto fit = static_cast<std::size_t>(std::max(10.0, (width - left - 60) / char_width));
  for (const auto& s : series) {
    std::vector<std::string> wrapped{""};
    std::istringstream words(s.name);
    for (std::string w; words >> w;) {
      while (w.size() > fit) {  // a word longer than a line is split
        if (!wrapped.back().empty()) wrapped.emplace_back();
        wrapped.back() = w.substr(0, fit), w = w.substr(fit);
        wrapped.emplace_back();
      }
      if (!wrapped.back().empty() && wrapped.back().size() + 1 + w.size() > fit) wrapped.emplace_back();
      wrapped.back() += (wrapped.back().empty() ? "" : " ") + w;
    }
    if (wrapped.size() > 1 && wrapped.back().empty()) wrapped.pop_back();
    out.extra_height += 16.0 * static_cast<double>(wrapped.size()) + 4;
    out.lines.push_back(std::move(wrapped));
  }
  out.extra_height += 8;
  return out;
}

// Where the plot lies in the picture, and the range of data it shows.
struct Frame {
  double left = 64, top = 34, plot_w = 0, plot_h = 0;
  int plot_height = 0;
  bool log_x = false;
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;

  double tx(double x) const { return log_x ? std::log10(std::max(x, 1e-12)) : x; }
  double px(double x) const { return left + (tx(x) - x_lo) / (x_hi - x_lo) * plot_w; }
  double py(double y) const { return top + (1.0 - (y - y_lo) / (y_hi - y_lo)) * plot_h; }
  bool has_data() const { return std::isfinite(x_lo) && std::isfinite(y_lo); }
};

// The data's range over every series (bands included), widened so that nothing sits on the frame.
void fit_range(Frame& f, const std::vector<ChartSeries>& series, bool zero_line) {
  const auto extend_y = [&](double v) {
    if (std::isfinite(v)) f.y_lo = std::min(f.y_lo, v), f.y_hi = std::max(f.y_hi, v);
  };
  for (const auto& s : series) {
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      f.x_lo = std::min(f.x_lo, f.tx(s.x[i]));
      f.x_hi = std::max(f.x_hi, f.tx(s.x[i]));
      extend_y(s.y[i]);
      if (i < s.low.size()) extend_y(s.low[i]), extend_y(s.high[i]);
    }
  }
  if (zero_line) extend_y(0.0);
  if (!f.has_data()) return;
  if (f.x_hi == f.x_lo) f.x_hi = f.x_lo + 1;
  if (f.y_hi == f.y_lo) f.y_hi = f.y_lo + 1e-3, f.y_lo -= 1e-3;
  const double pad = (f.y_hi - f.y_lo) * 0.06;
  f.y_lo -= pad;
  f.y_hi += pad;
}

// Tap names turned by 35 degrees, decades (and 2x, 5x) on a log axis, or round numbers.
void draw_x_ticks(std::ostream& svg, const Frame& f, const std::vector<std::string>& tap_names) {
  if (!tap_names.empty()) {
    const std::size_t every = std::max<std::size_t>(1, tap_names.size() / 12);
    for (std::size_t i = 0; i < tap_names.size(); i += every)
      svg << "<text transform=\"translate(" << f.px(static_cast<double>(i)) << ',' << f.top + f.plot_h + 12
          << ") rotate(35)\">" << html_escape(tap_names[i]) << "</text>\n";
  } else if (f.log_x) {
    // Every decade; on an axis spanning fewer than two, also 2x and 5x, so that it never shows
    // a lone label (MobileNetV2's MACs at 96 px run from 2 M to 55 M).
    const std::vector<double> steps = f.x_hi - f.x_lo < 2 ? std::vector<double>{1, 2, 5} : std::vector<double>{1};
    for (double e = std::floor(f.x_lo); e <= f.x_hi; e += 1)
      for (double m : steps) {
        const double v = m * std::pow(10, e);
        if (std::log10(v) < f.x_lo - 1e-9 || std::log10(v) > f.x_hi + 1e-9) continue;
        svg << "<line x1=\"" << f.px(v) << "\" x2=\"" << f.px(v) << "\" y1=\"" << f.top << "\" y2=\""
            << f.top + f.plot_h << "\" stroke=\"#f0f0f0\"/><text x=\"" << f.px(v) << "\" y=\"" << f.top + f.plot_h + 16
            << "\" text-anchor=\"middle\">" << tick_label(v) << "</text>\n";
      }
  } else {
    for (double t : nice_ticks(f.x_lo, f.x_hi))
      svg << "<text x=\"" << f.px(t) << "\" y=\"" << f.top + f.plot_h + 16 << "\" text-anchor=\"middle\">"
          << tick_label(t) << "</text>\n";
  }
}

void draw_axes(std::ostream& svg, const Frame& f, const std::vector<std::string>& tap_names, bool zero_line,
               const std::string& x_label, const std::string& y_label) {
  svg << "<g font-size=\"11\" fill=\"#444\">\n";
  for (double t : nice_ticks(f.y_lo, f.y_hi)) {
    svg << "<line x1=\"" << f.left << "\" x2=\"" << f.left + f.plot_w << "\" y1=\"" << f.py(t) << "\" y2=\"" << f.py(t)
        << "\" stroke=\"#e5e5e5\"/><text x=\"" << f.left - 6 << "\" y=\"" << f.py(t) + 4 << "\" text-anchor=\"end\">"
        << tick_label(t) << "</text>\n";
  }
  if (zero_line)
    svg << "<line x1=\"" << f.left << "\" x2=\"" << f.left + f.plot_w << "\" y1=\"" << f.py(0) << "\" y2=\"" << f.py(0)
        << "\" stroke=\"#888\"/>\n";
  draw_x_ticks(svg, f, tap_names);
  svg << "<rect x=\"" << f.left << "\" y=\"" << f.top << "\" width=\"" << f.plot_w << "\" height=\"" << f.plot_h
      << "\" fill=\"none\" stroke=\"#999\"/>\n";
  svg << "<text x=\"" << f.left + f.plot_w / 2 << "\" y=\"" << f.plot_height - 6 << "\" text-anchor=\"middle\">"
      << html_escape(x_label) << "</text>\n";
  svg << "<text transform=\"translate(14," << f.top + f.plot_h / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
      << html_escape(y_label) << "</text>\n</g>\n";
}

// One series: its band, its line (a gap at each NaN) and a marker with a tooltip per point.
void draw_series(std::ostream& svg, const Frame& f, const ChartSeries& s) {
  if (!s.low.empty()) {
    std::ostringstream band;
    for (std::size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.high[i])) band << (band.tellp() == 0 ? "M" : " L") << f.px(s.x[i]) << ',' << f.py(s.high[i]);
    for (std::size_t i = s.x.size(); i-- > 0;)
      if (std::isfinite(s.low[i])) band << " L" << f.px(s.x[i]) << ',' << f.py(s.low[i]);
    if (band.tellp() > 0)
      svg << "<path class=\"band\" d=\"" << band.str() << " Z\" fill=\"" << s.color
          << "\" fill-opacity=\"0.18\" stroke=\"none\"/>\n";
  }
  std::ostringstream line;
  bool pen_down = false;
  for (std::size_t i = 0; i < s.x.size(); ++i) {
    if (!std::isfinite(s.y[i])) {
      pen_down = false;
      continue;
    }
    line << (pen_down ? " L" : " M") << f.px(s.x[i]) << ',' << f.py(s.y[i]);
    pen_down = true;
  }
  svg << "<path class=\"line\" d=\"" << line.str() << "\" fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"2\""
      << (s.dashed ? " stroke-dasharray=\"5,4\"" : "") << "/>\n";
  for (std::size_t i = 0; i < s.x.size(); ++i)
    if (std::isfinite(s.y[i]))
      svg << "<circle class=\"mark\" cx=\"" << f.px(s.x[i]) << "\" cy=\"" << f.py(s.y[i]) << "\" r=\"3\" fill=\""
          << s.color << "\"><title>" << html_escape(s.name) << ": " << fmt(s.y[i], "%.4f") << "</title></circle>\n";
}

// The legend, beside the plot or under it (layout_legend); class "legend" for the browser test.
void draw_legend(std::ostream& svg, const Frame& f, const std::vector<ChartSeries>& series,
                 const LegendLayout& legend) {
  double ly = legend.below ? f.plot_height + 10.0 : f.top + 8;
  for (std::size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    const double lx = legend.below ? f.left : f.left + f.plot_w + 12;
    svg << "<line x1=\"" << lx << "\" x2=\"" << lx + 20 << "\" y1=\"" << ly << "\" y2=\"" << ly << "\" stroke=\""
        << s.color << "\" stroke-width=\"2\"" << (s.dashed ? " stroke-dasharray=\"5,4\"" : "") << "/>";
    for (const auto& line : legend.lines[k]) {
      svg << "<text class=\"legend\" x=\"" << lx + 24 << "\" y=\"" << ly + 4 << "\" font-size=\"11\" fill=\"#222\">"
          << html_escape(line) << "</text>";
      ly += legend.below ? 16 : 18;
    }
    if (legend.below) ly += 4;
    svg << "\n";
  }
}

void draw_marks(std::ostream& svg, const Frame& f, const std::vector<ChartMark>& marks) {
  for (const auto& m : marks) {
    if (!std::isfinite(m.y)) continue;
    svg << "<circle class=\"mark annotation\" cx=\"" << f.px(m.x) << "\" cy=\"" << f.py(m.y)
        << "\" r=\"7\" fill=\"none\" stroke=\"" << m.color << "\" stroke-width=\"2\"/><text x=\"" << f.px(m.x) + 9
        << "\" y=\"" << f.py(m.y) - 9 << "\" font-size=\"11\" fill=\"" << m.color << "\">" << html_escape(m.label)
        << "</text>\n";
  }
}

}  // namespace

std::string SvgChart::render(int width, int plot_height) const {
  // Tap names are drawn turned by 35 degrees under the plot: room for the longest, then the axis title.
  std::size_t longest_tick = 0;
  for (const auto& t : x_ticks_) longest_tick = std::max(longest_tick, t.size());
  Frame f;
  const double bottom = std::max(58.0, 12 + 3.8 * static_cast<double>(longest_tick) + 24);
  const LegendLayout legend = layout_legend(series_, width, f.left);
  const int height = plot_height + static_cast<int>(std::ceil(legend.extra_height));
  f.plot_w = width - f.left - legend.right;
  f.plot_h = plot_height - f.top - bottom;
  f.plot_height = plot_height;
  f.log_x = log_x_;
  fit_range(f, series_, zero_line_);

  std::ostringstream svg;
  svg << "<svg class=\"kgain-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << ' ' << height << "\" role=\"img\" aria-label=\"" << html_escape(title_)
      << "\">\n";
  svg << "<rect x=\"0\" y=\"0\" width=\"" << width << "\" height=\"" << height << "\" fill=\"#ffffff\"/>\n";
  svg << "<text x=\"" << f.left << "\" y=\"20\" font-size=\"14\" font-weight=\"bold\" fill=\"#222\">"
      << html_escape(title_) << "</text>\n";
  if (!f.has_data()) {
    svg << "<text x=\"" << f.left << "\" y=\"" << f.top + f.plot_h / 2 << "\" fill=\"#888\">no data</text></svg>\n";
    return svg.str();
  }
  draw_axes(svg, f, x_ticks_, zero_line_, x_label_, y_label_);
  for (const auto& s : series_) draw_series(svg, f, s);
  draw_legend(svg, f, series_, legend);
  draw_marks(svg, f, marks_);
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace kgain::core
