// The report of a paired comparison (kgain compare --paired): per-tap scores and gains of every
// run, the differences from the first run with their paired intervals, and which run wins at
// each depth and by how much.
#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "extract/durable_file.hpp"
#include "write/report.hpp"
#include "write/svg_chart.hpp"
#include "write/report_parts.hpp"

namespace kgain::core {
namespace {

using namespace report_parts;

constexpr int chart_width = 1140;  // the page's width: one chart per row, legends with room

// The rows of one probe and metric, by (tap, run pair).
struct Slice {
  const PairedComparison& c;
  std::map<std::pair<std::size_t, std::pair<std::size_t, std::size_t>>, const PairedRow*> rows;
  Slice(const PairedComparison& comparison, const std::string& probe, const std::string& metric) : c(comparison) {
    for (const auto& r : c.rows)
      if (r.probe == probe && r.metric == metric) rows[{r.tap_index, {r.run_a, r.run_b}}] = &r;
  }
  // Difference run i - run j at tap t (score or gain), with its interval and p-value.
  struct Difference {
    double value, low, high, p, q;
  };
  Difference difference(std::size_t t, std::size_t i, std::size_t j, bool gain) const {
    const bool forward = i < j;
    const PairedRow& r = *rows.at({t, forward ? std::make_pair(i, j) : std::make_pair(j, i)});
    const double v = gain ? r.gain_difference : r.score_difference, lo = gain ? r.gain_low : r.score_low,
                 hi = gain ? r.gain_high : r.score_high;
    const double p = gain ? r.gain_p : r.score_p, q = gain ? r.gain_q : r.score_q;
    return forward ? Difference{v, lo, hi, p, q} : Difference{-v, -hi, -lo, p, q};
  }
  double value(std::size_t t, std::size_t run, bool gain) const {
    const PairedRow& r = run == 0 ? *rows.at({t, {0, 1}}) : *rows.at({t, {0, run}});
    if (run == 0) return gain ? r.gain_a : r.score_a;
    return gain ? r.gain_b : r.score_b;
  }
};

std::string interval(double low, double high) { return "[" + fixed(low) + ", " + fixed(high) + "]"; }

// Which run is best at tap t (by score or gain), and its margin over the runner-up.
std::string winner_cells(const Slice& s, std::size_t t, bool gain, bool higher_is_better) {
  const std::size_t n = s.c.runs.size();
  const double direction = gain || higher_is_better ? 1.0 : -1.0;  // gains are "higher is better" by construction
  std::vector<std::size_t> order(n);
  for (std::size_t r = 0; r < n; ++r) order[r] = r;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return direction * s.value(t, a, gain) > direction * s.value(t, b, gain);
  });
  const auto d = s.difference(t, order[0], order[1], gain);
  // In "better" units: positive when the winner is better, the interval turned the same way.
  const double margin = direction * d.value, low = direction > 0 ? d.low : -d.high,
               high = direction > 0 ? d.high : -d.low;
  const bool clear = low > 0;
  std::ostringstream html;
  html << "<td class=\"l" << (clear ? " win" : "") << "\">" << html_escape(s.c.runs[order[0]].label) << "</td><td>"
       << fixed(margin) << "</td><td>" << interval(low, high) << "</td><td>" << fixed(d.p, 3) << "</td><td>"
       << fixed(d.q, 3) << "</td><td class=\"l\">"
       << (std::isnan(low) ? "–"
           : clear         ? "yes"
                           : "no")
       << "</td>";
  return html.str();
}

std::string section(const PairedComparison& c, const std::string& probe, std::size_t metric_index) {
  const std::string& metric = c.metrics[metric_index];
  const Slice s(c, probe, metric);
  const std::size_t n = c.runs.size();
  std::vector<double> x;
  for (std::size_t t = 0; t < c.taps.size(); ++t) x.push_back(static_cast<double>(t));
  // Identical random baselines make every gain difference the score difference: not shown twice.
  const bool has_gain = !std::isnan(s.value(0, 0, true)),
             has_gain_difference = has_gain && !c.identical_random_baselines;

  SvgChart scores("Pretrained score per tap", "tap", metric),
      gains("Knowledge gain per tap (pretrained − random)", "tap", "gain in " + metric);
  const std::string ref = c.runs[0].label;
  SvgChart score_diff("Score difference from " + ref + " (paired interval)", "tap", "Δ " + metric);
  SvgChart gain_diff("Gain difference from " + ref + " (paired interval)", "tap", "Δ gain in " + metric);
  for (auto* chart : {&scores, &gains, &score_diff, &gain_diff}) chart->x_tick_labels(c.taps);
  for (auto* chart : {&gains, &score_diff, &gain_diff}) chart->zero_line(true);
  for (std::size_t r = 0; r < n; ++r) {
    const std::string colour = palette[r % 10];
    std::vector<double> sc, ga, ds, ds_lo, ds_hi, dg, dg_lo, dg_hi;
    for (std::size_t t = 0; t < c.taps.size(); ++t) {
      sc.push_back(s.value(t, r, false));
      ga.push_back(s.value(t, r, true));
      if (r == 0) continue;
      const auto d = s.difference(t, r, 0, false), g = s.difference(t, r, 0, true);
      ds.push_back(d.value), ds_lo.push_back(d.low), ds_hi.push_back(d.high);
      dg.push_back(g.value), dg_lo.push_back(g.low), dg_hi.push_back(g.high);
    }
    scores.add({c.runs[r].label, colour, x, sc, {}, {}, false});
    gains.add({c.runs[r].label, colour, x, ga, {}, {}, false});
    if (r == 0) continue;
    score_diff.add({c.runs[r].label + " − " + ref, colour, x, ds, ds_lo, ds_hi, false});
    gain_diff.add({c.runs[r].label + " − " + ref, colour, x, dg, dg_lo, dg_hi, false});
  }
  std::ostringstream html;
  html << "<h2>Probe: " << html_escape(probe) << " — " << html_escape(metric) << "</h2>\n<div class=\"charts\">\n"
       << scores.render(chart_width, 360) << (has_gain ? gains.render(chart_width, 360) : "")
       << score_diff.render(chart_width, 360) << (has_gain_difference ? gain_diff.render(chart_width, 360) : "")
       << "</div>\n";

  html << "<h3>Which run wins at each tap</h3>\n<p class=\"note\">Margin = the winner's advantage over the runner-up "
          "(in "
       << html_escape(metric)
       << ", positive = better), with its paired interval and p-value; q is the p-value adjusted for testing every tap "
          "(Benjamini-Hochberg over the taps of this pair of runs); \"clear\" when the interval excludes 0 — with many "
          "taps, "
          "expect about one clear tap in 20 by chance: look at q before calling a difference real.</p>\n"
       << "<table><tr><th class=\"l\">#</th><th class=\"l\">tap</th>";
  for (const auto& run : c.runs) html << "<th>" << html_escape(run.label) << "</th>";
  html << "<th class=\"l\">best score</th><th>margin</th><th>interval</th><th>p</th><th>q</th><th "
          "class=\"l\">clear</th>";
  if (has_gain_difference)
    html << "<th class=\"l\">largest gain</th><th>margin</th><th>interval</th><th>p</th><th>q</th><th "
            "class=\"l\">clear</th>";
  html << "</tr>\n";
  for (std::size_t t = 0; t < c.taps.size(); ++t) {
    html << "<tr><td class=\"l\">" << t << "</td><td class=\"l\">" << html_escape(c.taps[t]) << "</td>";
    for (std::size_t r = 0; r < n; ++r) html << "<td>" << fixed(s.value(t, r, false)) << "</td>";
    html << winner_cells(s, t, false, c.higher_is_better[metric_index]);
    if (has_gain_difference) html << winner_cells(s, t, true, true);
    html << "</tr>\n";
  }
  html << "</table>\n";
  return html.str();
}

std::string pairs_table(const PairedComparison& c) {
  std::ostringstream html;
  html << "<table><tr><th class=\"l\">probe</th><th class=\"l\">metric</th><th class=\"l\">tap</th><th "
          "class=\"l\">a</th><th class=\"l\">b</th>"
          "<th>score a − b</th><th>interval</th><th>p</th><th>q</th><th>gain a − "
          "b</th><th>interval</th><th>p</th><th>q</th></tr>\n";
  for (const auto& r : c.rows)
    html << "<tr><td class=\"l\">" << html_escape(r.probe) << "</td><td class=\"l\">" << html_escape(r.metric)
         << "</td><td class=\"l\">" << html_escape(r.tap) << "</td><td class=\"l\">"
         << html_escape(c.runs[r.run_a].label) << "</td><td class=\"l\">" << html_escape(c.runs[r.run_b].label)
         << "</td><td>" << fixed(r.score_difference) << "</td><td>" << interval(r.score_low, r.score_high)
         << "</td><td>" << fixed(r.score_p, 3) << "</td><td>" << fixed(r.score_q, 3) << "</td><td>"
         << fixed(r.gain_difference) << "</td><td>" << interval(r.gain_low, r.gain_high) << "</td><td>"
         << fixed(r.gain_p, 3) << "</td><td>" << fixed(r.gain_q, 3) << "</td></tr>\n";
  html << "</table>\n";
  return html.str();
}

}  // namespace

void write_paired_report(const PairedComparison& c, const std::string& out_file) {
  std::ostringstream html;
  const int level = static_cast<int>(std::lround(c.confidence * 100));
  html << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>kgain: paired comparison</title>"
       << style << "</head><body>\n<h1>Paired comparison of " << c.runs.size() << " runs on " << html_escape(c.dataset)
       << "</h1>\n"
       << "<p class=\"note\">Every run tested the same images in the same folds (checked on splits.csv). Differences "
          "are paired: "
       << c.replicates
       << " bootstrap replicates draw the test images of each fold with replacement, the same draw for every run"
       << (c.shared_random_draw ? ", and the random seeds once for all runs (they list the same random variants)"
                                : ", and each run's random seeds")
       << "; " << level << "% percentile intervals, two-sided p-values of \"no difference\" (docs/protocol.md).</p>\n"
       << (c.identical_random_baselines
               ? "<p class=\"note\">The runs' random variants predicted exactly alike (one architecture, the same "
                 "seeds): their random baselines are identical, so each gain difference equals the score "
                 "difference, and only the score difference is drawn.</p>\n"
               : "")
       << "<table><tr><th class=\"l\">run</th><th class=\"l\">backbone</th><th class=\"l\">weights</th><th "
          "class=\"l\">directory</th></tr>\n";
  for (const auto& r : c.runs)
    html << "<tr><td class=\"l\">" << html_escape(r.label) << "</td><td class=\"l\">" << html_escape(r.backbone)
         << "</td><td class=\"l\">" << html_escape(r.weights) << "</td><td class=\"l\">" << html_escape(r.dir)
         << "</td></tr>\n";
  html << "</table>\n";
  for (const auto& probe : c.probes) html << section(c, probe, 0);
  html << "<h2>Other metrics</h2>\n";
  for (const auto& probe : c.probes)
    for (std::size_t m = 1; m < c.metrics.size(); ++m)
      html << "<details><summary>" << html_escape(probe) << " — " << html_escape(c.metrics[m]) << "</summary>"
           << section(c, probe, m) << "</details>\n";
  html << "<details><summary>Every pair of runs, probe, metric and tap</summary>" << pairs_table(c)
       << "</details>\n</body></html>\n";
  write_file_atomically(out_file, html.str());
}

}  // namespace kgain::core
