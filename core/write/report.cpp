#include "write/report.hpp"

#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "write/results.hpp"
#include "write/report_parts.hpp"
#include "runtime/text_file.hpp"
#include "write/svg_chart.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace kgain::core {
namespace {

using namespace report_parts;

std::string read_text(const std::string& path) {
  const auto text = read_text_file(path);
  if (!text) throw std::runtime_error("cannot read " + path + ": is this a kgain run directory (made by 'kgain run')?");
  return *text;
}

json read_json(const std::string& path) {
  try {
    return json::parse(read_text(path));
  } catch (const json::parse_error& e) {
    throw std::runtime_error(path + " is not valid JSON (" + e.what() + "); rerun 'kgain run' to rewrite it");
  }
}

// Rows of gain.json for one probe and metric, in tap order.
std::vector<json> rows_for(const json& gain, const std::string& probe, const std::string& metric) {
  std::vector<json> out;
  for (const auto& r : gain["rows"])
    if (r["probe"] == probe && r["metric"] == metric) out.push_back(r);
  return out;
}

std::string probe_section(const json& gain, const std::string& probe, const std::string& metric, double confidence) {
  const auto rows = rows_for(gain, probe, metric);
  if (rows.empty()) return "";
  std::vector<double> x, pre, pre_lo, pre_hi, rnd, rnd_lo, rnd_hi, g, g_lo, g_hi, params, macs;
  std::vector<std::string> names;
  // Marks with no finite y are not drawn: a table without a flagged tap gets no false mark.
  const double none = std::numeric_limits<double>::quiet_NaN();
  ChartMark sweet{0, none, "", "#d62728"}, most{0, none, "", "#d62728"};
  for (const auto& r : rows) {
    const double t = r["tap_index"].get<double>();
    x.push_back(t);
    names.push_back(r["tap"].get<std::string>());
    pre.push_back(num(r["pretrained"]));
    pre_lo.push_back(num(r["pretrained_low"]));
    pre_hi.push_back(num(r["pretrained_high"]));
    rnd.push_back(num(r["random_mean"]));
    rnd_lo.push_back(num(r["random_mean"]) - num(r["random_sd"]));
    rnd_hi.push_back(num(r["random_mean"]) + num(r["random_sd"]));
    g.push_back(num(r["gain"]));
    g_lo.push_back(num(r["gain_low"]));
    g_hi.push_back(num(r["gain_high"]));
    params.push_back(std::max(1.0, num(r["parameters"])));
    macs.push_back(r.contains("macs") ? num(r["macs"]) : -1.0);
    if (r["sweet_spot"] == true) sweet = {t, pre.back(), "sweet spot: " + names.back(), "#d62728"};
    if (r["max_gain"] == true) most = {t, g.back(), "largest gain: " + names.back(), "#d62728"};
  }
  const std::string ci = std::to_string(static_cast<int>(std::lround(confidence * 100))) + "%";
  std::ostringstream html;
  html << "<h2>Probe: " << html_escape(probe) << " — " << html_escape(metric) << "</h2>\n<div class=\"charts\">\n";

  SvgChart scores("Score per tap: pretrained vs random weights", "tap", metric);
  scores.x_tick_labels(names);
  scores.add({"pretrained (" + ci + " interval)", palette[0], x, pre, pre_lo, pre_hi, false});
  scores.add({"random (mean ± sd)", palette[1], x, rnd, rnd_lo, rnd_hi, true});
  scores.mark(sweet);
  html << scores.render();

  SvgChart gains("Knowledge gain per tap (" + ci + " paired bootstrap interval)", "tap", "gain in " + metric);
  gains.x_tick_labels(names);
  gains.zero_line(true);
  gains.add({"gain", palette[2], x, g, g_lo, g_hi, false});
  gains.mark(most);
  html << gains.render();

  SvgChart cost("Score vs parameters up to the tap", "parameters (log scale)", metric);
  cost.log_x(true);
  cost.add({"pretrained", palette[0], params, pre, {}, {}, false});
  cost.add({"random (mean)", palette[1], params, rnd, {}, {}, true});
  cost.mark({params[static_cast<std::size_t>(sweet.x)], sweet.y, sweet.label, sweet.color});
  html << cost.render();
  // Compute, when the backbone counts it (every tap > 0 MACs).
  if (!macs.empty() && *std::min_element(macs.begin(), macs.end()) > 0) {
    SvgChart compute("Score vs multiply-accumulates up to the tap", "MACs per image (log scale)", metric);
    compute.log_x(true);
    compute.add({"pretrained", palette[0], macs, pre, {}, {}, false});
    compute.add({"random (mean)", palette[1], macs, rnd, {}, {}, true});
    compute.mark({macs[static_cast<std::size_t>(sweet.x)], sweet.y, sweet.label, sweet.color});
    html << compute.render();
  }
  html << "</div>\n";

  html << "<table><tr><th class=\"l\">#</th><th "
          "class=\"l\">tap</th><th>parameters</th><th>MACs</th><th>pretrained</th><th>random mean</th>"
          "<th>random sd</th><th>gain</th><th>interval</th><th>p</th><th>relative gain</th></tr>\n";
  for (const auto& r : rows)
    html << "<tr" << (r["sweet_spot"] == true ? " class=\"sweet\"" : "") << "><td class=\"l\">"
         << r["tap_index"].get<int>() << "</td><td class=\"l\">" << html_escape(r["tap"].get<std::string>())
         << (r["sweet_spot"] == true ? " (sweet spot)" : "") << (r["max_gain"] == true ? " (largest gain)" : "")
         << "</td><td>" << r["parameters"].get<long long>() << "</td><td>"
         << (r.contains("macs") && r["macs"].get<long long>() >= 0 ? std::to_string(r["macs"].get<long long>()) : "—")
         << "</td><td>" << fixed(num(r["pretrained"])) << "</td><td>" << fixed(num(r["random_mean"])) << "</td><td>"
         << fixed(num(r["random_sd"])) << "</td><td>" << fixed(num(r["gain"])) << "</td><td>["
         << fixed(num(r["gain_low"])) << ", " << fixed(num(r["gain_high"])) << "]</td><td>"
         << fixed(num(r["p_value"]), 3) << "</td><td>" << fixed(num(r["relative_gain"])) << "</td></tr>\n";
  html << "</table>\n";
  return html.str();
}

std::string transferability_section(const json& gain) {
  if (!gain.contains("transferability") || gain["transferability"].empty()) return "";
  std::map<std::string, std::vector<std::pair<double, double>>> by_metric;  // metric -> (tap, pretrained)
  std::vector<std::string> names;
  for (const auto& t : gain["transferability"]) {
    by_metric[t["metric"].get<std::string>()].push_back({t["tap_index"].get<double>(), num(t["pretrained"])});
    const auto i = t["tap_index"].get<std::size_t>();
    if (names.size() <= i) names.resize(i + 1);
    names[i] = t["tap"].get<std::string>();
  }
  std::ostringstream html;
  html << "<h2>Transferability estimators per tap</h2>\n<p class=\"note\">Each estimator on the pretrained features, "
          "rescaled to "
          "[0, 1] across taps (its ranking of the taps is what matters), next to the probe's score rescaled the same "
          "way. The "
          "table gives the raw values and the Spearman correlation of each estimator's ranking with the "
          "probe's.</p>\n<div class=\"charts\">\n";
  SvgChart chart("Transferability (rescaled) per tap", "tap", "rescaled to [0, 1]");
  chart.x_tick_labels(names);
  const auto rescale = [](std::vector<double> v) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (double x : v)
      if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
    for (double& x : v) x = hi > lo ? (x - lo) / (hi - lo) : 0.5;
    return v;
  };
  int colour = 2;
  for (const auto& [metric, points] : by_metric) {
    if (metric == "cka") continue;
    std::vector<double> x, y;
    for (const auto& [t, v] : points) x.push_back(t), y.push_back(v);
    chart.add({metric, palette[colour++ % 10], x, rescale(y), {}, {}, false});
  }
  const std::string probe_metric = gain.value("rank_agreement_with", "");
  std::vector<double> px, py;
  for (const auto& r : gain["rows"])
    if (r["metric"] == probe_metric && r["probe"] == gain["rows"][0]["probe"])
      px.push_back(r["tap_index"].get<double>()), py.push_back(num(r["pretrained"]));
  if (!px.empty()) chart.add({"probe " + probe_metric, "#000000", px, rescale(py), {}, {}, true});
  html << chart.render();
  if (by_metric.count("cka")) {
    SvgChart cka("Linear CKA between pretrained and random features", "tap", "CKA (mean over seeds)");
    cka.x_tick_labels(names);
    std::vector<double> x, y;
    for (const auto& [t, v] : by_metric["cka"]) x.push_back(t), y.push_back(v);
    cka.add({"CKA(pretrained, random)", palette[4], x, y, {}, {}, false});
    html << cka.render();
  }
  html << "</div>\n";
  if (gain.contains("source_transferability")) {
    html << "<p>From the backbone's own ImageNet head (per backbone, not per tap): ";
    for (const auto& [name, v] : gain["source_transferability"].items())
      html << html_escape(name) << " = " << fixed(num(v)) << "; ";
    html << "LEEP and NCE are at most 0, where the source classes predict the labels perfectly.</p>\n";
  }
  if (gain.contains("rank_agreement")) {
    html << "<table><tr><th class=\"l\">estimator</th><th>Spearman with the probe's " << html_escape(probe_metric)
         << "</th></tr>\n";
    for (const auto& [name, rho] : gain["rank_agreement"].items())
      html << "<tr><td class=\"l\">" << html_escape(name) << "</td><td>" << fixed(num(rho), 3) << "</td></tr>\n";
    html << "</table>\n";
  }
  return html.str();
}

std::string dataset_section(const json& run) {
  std::ostringstream html;
  const auto& d = run["dataset"];
  html << "<h2>Dataset</h2>\n<p>" << html_escape(d.value("description", "")) << " — " << d.value("images", 0)
       << " images used, split: " << html_escape(d.value("split_strategy", "")) << " (" << d.value("folds", 0)
       << " fold" << (d.value("folds", 0) == 1 ? "" : "s")
       << ")</p>\n<table><tr><th class=\"l\">class</th><th>images</th><th>groups</th></tr>\n";
  for (const auto& c : d["classes"])
    html << "<tr><td class=\"l\">" << html_escape(c["name"].get<std::string>()) << "</td><td>"
         << c["images"].get<long long>() << "</td><td>" << c["groups"].get<long long>() << "</td></tr>\n";
  html << "</table>\n";
  if (d.contains("bad_images") && !d["bad_images"].empty()) {
    html
        << "<h3>Images left out (on_bad_image = \"skip\")</h3>\n<table><tr><th class=\"l\">file and reason</th></tr>\n";
    for (const auto& b : d["bad_images"])
      html << "<tr><td class=\"l\">" << html_escape(b.value("reason", "")) << "</td></tr>\n";
    html << "</table>\n";
  }
  return html.str();
}

}  // namespace

std::string write_report(const std::string& run_dir) {
  const json gain = read_json(run_dir + "/gain.json");
  const json run = read_json(run_dir + "/run.json");
  const std::string config = read_text(run_dir + "/config.resolved.toml");
  const double confidence = gain.value("confidence", 0.95);

  std::set<std::string> seen;
  std::vector<std::string> probes, metrics;
  for (const auto& r : gain["rows"]) {
    if (seen.insert("p" + r["probe"].get<std::string>()).second) probes.push_back(r["probe"]);
    if (seen.insert("m" + r["metric"].get<std::string>()).second) metrics.push_back(r["metric"]);
  }
  std::ostringstream html;
  const std::string title = gain.value("backbone", "") + " on " + gain.value("dataset", "");
  html << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>kgain: " << html_escape(title)
       << "</title>" << style << "</head><body>\n<h1>Knowledge gain by transfer: " << html_escape(title) << "</h1>\n";
  html << "<p class=\"note\">Run '" << html_escape(run.value("name", "")) << "', "
       << html_escape(run.value("finished", ""))
       << ". Gain = pretrained score − mean score of the random-weight copies (" << run.value("random_seeds", 0)
       << " seeds); intervals are " << static_cast<int>(std::lround(confidence * 100))
       << "% paired bootstrap intervals over test images and seeds (docs/protocol.md).</p>\n";
  if (gain.contains("summary")) {
    html << "<ul>\n";
    for (const auto& [probe, per_metric] : gain["summary"].items())
      for (const auto& [metric, s] : per_metric.items())
        html << "<li>" << html_escape(probe) << ", " << html_escape(metric) << ": sweet spot <b>"
             << html_escape(s.value("sweet_spot", "?")) << "</b>, largest gain at <b>"
             << html_escape(s.value("max_gain", "?")) << "</b></li>\n";
    html << "</ul>\n";
  }
  for (const auto& p : probes) html << probe_section(gain, p, metrics.front(), confidence);
  html << transferability_section(gain);
  html << "<h2>All probes and metrics</h2>\n";
  for (const auto& p : probes)
    for (std::size_t m = 1; m < metrics.size(); ++m)
      html << "<details><summary>" << html_escape(p) << " — " << html_escape(metrics[m]) << "</summary>"
           << probe_section(gain, p, metrics[m], confidence) << "</details>\n";
  html << dataset_section(run);
  html << "<h2>Configuration</h2>\n<pre>" << html_escape(config) << "</pre>\n";
  html << "<h2>Software</h2>\n<table><tr><th class=\"l\">component</th><th class=\"l\">version</th><th "
          "class=\"l\">library</th></tr>\n";
  html << "<tr><td class=\"l\">kgain</td><td class=\"l\">" << html_escape(run["software"].value("kgain", ""))
       << "</td><td></td></tr>\n"
       << "<tr><td class=\"l\">LibTorch</td><td class=\"l\">" << html_escape(run["software"].value("libtorch", ""))
       << "</td><td></td></tr>\n";
  for (const auto& p : run["software"]["plugins"])
    html << "<tr><td class=\"l\">" << html_escape(p.value("kind", "") + " " + p.value("name", ""))
         << "</td><td class=\"l\">" << html_escape(p.value("version", "")) << "</td><td class=\"l\">"
         << html_escape(p.value("library", "")) << "</td></tr>\n";
  html << "</table>\n</body></html>\n";
  std::string path = run_dir + "/report.html";
  write_file_atomically(path, html.str());
  return path;
}

void write_comparison(const std::vector<std::string>& run_dirs, const std::string& out_file) {
  SvgChart gain_chart("Knowledge gain by relative depth", "relative depth (tap / last tap)", "gain");
  SvgChart score_chart("Pretrained score by relative depth", "relative depth (tap / last tap)", "score");
  SvgChart cost_chart("Pretrained score vs parameters", "parameters (log scale)", "score");
  gain_chart.zero_line(true);
  cost_chart.log_x(true);
  std::ostringstream rows;
  for (std::size_t k = 0; k < run_dirs.size(); ++k) {
    const json gain = read_json(run_dirs[k] + "/gain.json");
    if (gain["rows"].empty()) continue;
    const std::string probe = gain["rows"][0]["probe"], metric = gain["rows"][0]["metric"];
    const auto r = rows_for(gain, probe, metric);
    const std::string label = gain.value("backbone", "") + " / " + gain.value("dataset", "") + " (" + metric + ")";
    std::vector<double> depth, g, lo, hi, pre, params;
    for (const auto& row : r) {
      depth.push_back(r.size() > 1 ? row["tap_index"].get<double>() / static_cast<double>(r.size() - 1) : 0.0);
      g.push_back(num(row["gain"]));
      lo.push_back(num(row["gain_low"]));
      hi.push_back(num(row["gain_high"]));
      pre.push_back(num(row["pretrained"]));
      params.push_back(std::max(1.0, num(row["parameters"])));
      if (row["sweet_spot"] == true || row["max_gain"] == true)
        rows << "<tr><td class=\"l\">" << html_escape(run_dirs[k]) << "</td><td class=\"l\">" << html_escape(label)
             << "</td><td class=\"l\">" << html_escape(row["tap"].get<std::string>()) << "</td><td class=\"l\">"
             << (row["sweet_spot"] == true ? "sweet spot " : "") << (row["max_gain"] == true ? "largest gain" : "")
             << "</td><td>" << fixed(num(row["pretrained"])) << "</td><td>" << fixed(num(row["gain"]))
             << "</td></tr>\n";
    }
    const std::string colour = palette[k % 10];
    gain_chart.add({label, colour, depth, g, lo, hi, false});
    score_chart.add({label, colour, depth, pre, {}, {}, false});
    cost_chart.add({label, colour, params, pre, {}, {}, false});
  }
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>kgain: comparison</title>" << style
       << "</head><body>\n<h1>kgain: " << run_dirs.size()
       << " runs compared</h1>\n<p class=\"note\">Each run's first probe and first "
          "metric. Relative depth puts backbones with different numbers of taps on one axis.</p>\n<div "
          "class=\"charts\">\n"
       << gain_chart.render(1140, 380) << score_chart.render(1140, 380) << cost_chart.render(1140, 380)
       << "</div>\n<table><tr><th class=\"l\">run</th><th class=\"l\">study</th>"
       << "<th class=\"l\">tap</th><th class=\"l\">role</th><th>pretrained</th><th>gain</th></tr>\n"
       << rows.str() << "</table>\n</body></html>\n";
  write_file_atomically(out_file, html.str());
}

}  // namespace kgain::core
