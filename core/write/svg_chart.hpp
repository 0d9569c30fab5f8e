// SvgChart: a small line chart drawn as inline SVG, so that reports need no scripts, fonts or
// network. Series are lines with optional markers and an optional shaded band (an interval or
// mean +- sd); annotations mark single points (the sweet spot).
#pragma once

#include <string>
#include <vector>

namespace kgain::core {

struct ChartSeries {
  std::string name;
  std::string color;              // CSS colour
  std::vector<double> x, y;       // NaN y values leave a gap
  std::vector<double> low, high;  // optional band, same length as x
  bool dashed = false;
};

struct ChartMark {
  double x = 0, y = 0;
  std::string label;
  std::string color = "#d62728";
};

class SvgChart {
 public:
  SvgChart(std::string title, std::string x_label, std::string y_label)
      : title_(std::move(title)), x_label_(std::move(x_label)), y_label_(std::move(y_label)) {}
  void add(ChartSeries series) { series_.push_back(std::move(series)); }
  void mark(ChartMark mark) { marks_.push_back(std::move(mark)); }
  void log_x(bool on) { log_x_ = on; }
  // Tick labels for integer x positions (tap names); when empty, numeric ticks are drawn.
  void x_tick_labels(std::vector<std::string> labels) { x_ticks_ = std::move(labels); }
  void zero_line(bool on) { zero_line_ = on; }
  // The <svg> element, with class="kgain-chart", one element with class="mark" per drawn data
  // point and one with class="legend" per legend line (the browser test checks them). The legend
  // sits beside the plot when its longest name fits in a third of `width`, else under it, names
  // wrapped, and the chart grows taller than `height` by its rows: a legend is never cut.
  std::string render(int width = 720, int height = 340) const;

 private:
  std::string title_, x_label_, y_label_;
  std::vector<ChartSeries> series_;
  std::vector<ChartMark> marks_;
  std::vector<std::string> x_ticks_;
  bool log_x_ = false;
  bool zero_line_ = false;
};

// Escapes &, <, >, " for HTML and SVG text.
std::string html_escape(const std::string& text);

}  // namespace kgain::core
