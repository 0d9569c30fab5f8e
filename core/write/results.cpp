#include "write/results.hpp"
#include "write/json_number.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <unistd.h>

namespace kgain::core {
// The shortest text that reads back as exactly `v` (0.773, not 0.77300000000000002).
std::string csv_number(double v) {
  if (std::isnan(v)) return "";
  char buf[32];
  const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;  // never fails: 32 bytes hold any double
  return std::string(buf, end);
}

namespace {

// A number of the console table in `format` at `width`, or a dash where it is not defined.
std::string table_number(const char* format, double v, int width) {
  char buf[48];
  if (std::isnan(v))
    std::snprintf(buf, sizeof buf, "%*s", width, "-");
  else
    std::snprintf(buf, sizeof buf, format, width, v);
  return buf;
}

}  // namespace

std::string format_gain_table(const std::vector<GainRow>& rows, const std::string& probe, const std::string& metric) {
  int width = 14;  // the tap column fits the longest name (a ViT's blocks, torchvision's encoder layers)
  for (const auto& g : rows) width = std::max(width, static_cast<int>(g.tap.size()));
  std::string out;
  char line[1024];
  std::snprintf(line, sizeof line, "%-4s %-*s %10s %9s %10s %17s %9s %19s %8s\n", "#", width, "tap", "parameters",
                "MMACs", "pretrained", "random (sd)", "gain", "interval", "p");
  out += line;
  for (const auto& g : rows) {
    if (g.metric != metric || g.probe != probe) continue;
    char macs[32] = "-";
    if (g.macs >= 0) std::snprintf(macs, sizeof macs, "%.1f", static_cast<double>(g.macs) / 1e6);
    const std::string random =
        table_number("%*.4f", g.random_mean, 0) + " (" + table_number("%*.4f", g.random_sd, 0) + ")";
    const std::string interval =
        std::isnan(g.gain_low) || std::isnan(g.gain_high)
            ? std::string("-")
            : "[" + table_number("%+*.4f", g.gain_low, 0) + ", " + table_number("%+*.4f", g.gain_high, 0) + "]";
    std::snprintf(
        line, sizeof line, "%-4zu %-*s %10lld %9s %10s %17s %9s %19s %8s%s%s\n", g.tap_index, width, g.tap.c_str(),
        static_cast<long long>(g.parameters), macs, table_number("%*.4f", g.pretrained, 0).c_str(), random.c_str(),
        table_number("%+*.4f", g.gain, 0).c_str(), interval.c_str(), table_number("%*.4f", g.p_value, 0).c_str(),
        g.sweet_spot ? "  <- sweet spot" : "", g.max_gain ? "  <- largest gain" : "");
    out += line;
  }
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

void write_results_csv(const std::string& path, const StudyLabels& labels, const std::vector<ScoreRow>& rows) {
  std::ostringstream out;
  out << "dataset,backbone,probe,variant,seed,tap_index,tap,fold,metric,score,n_train,n_test\n";
  for (const auto& r : rows)
    out << csv_field(labels.dataset) << ',' << csv_field(labels.backbone) << ',' << csv_field(r.probe) << ','
        << r.variant << ',' << (r.pretrained ? std::string() : std::to_string(r.seed)) << ',' << r.tap_index << ','
        << csv_field(r.tap) << ',' << r.fold << ',' << r.metric << ',' << csv_number(r.score) << ',' << r.n_train << ','
        << r.n_test << '\n';
  write_file_atomically(path, out.str());
}

void write_gain_csv(const std::string& path, const StudyLabels& labels, const std::vector<GainRow>& rows) {
  std::ostringstream out;
  out << "dataset,backbone,probe,tap_index,tap,metric,pretrained,pretrained_low,pretrained_high,random_mean,random_sd,"
         "random_seeds,"
         "gain,gain_low,gain_high,p_value,relative_gain,sweet_spot,max_gain,parameters,macs,feature_dim\n";
  for (const auto& g : rows)
    out << csv_field(labels.dataset) << ',' << csv_field(labels.backbone) << ',' << csv_field(g.probe) << ','
        << g.tap_index << ',' << csv_field(g.tap) << ',' << g.metric << ',' << csv_number(g.pretrained) << ','
        << csv_number(g.pretrained_low) << ',' << csv_number(g.pretrained_high) << ',' << csv_number(g.random_mean)
        << ',' << csv_number(g.random_sd) << ',' << g.random_seeds << ',' << csv_number(g.gain) << ','
        << csv_number(g.gain_low) << ',' << csv_number(g.gain_high) << ',' << csv_number(g.p_value) << ','
        << csv_number(g.relative_gain) << ',' << (g.sweet_spot ? "true" : "false") << ','
        << (g.max_gain ? "true" : "false") << ',' << g.parameters << ',' << g.macs << ',' << g.feature_dim << '\n';
  write_file_atomically(path, out.str());
}

void write_gain_json(const std::string& path, const StudyLabels& labels, const std::vector<GainRow>& rows,
                     double confidence, const std::vector<TransferabilityRow>& transferability,
                     const std::vector<std::pair<std::string, double>>& rank_agreement, const std::string& probe_metric,
                     const std::vector<std::pair<std::string, double>>& source_transferability) {
  const auto value = json_number;
  nlohmann::json doc;
  doc["dataset"] = labels.dataset;
  doc["backbone"] = labels.backbone;
  doc["confidence"] = confidence;
  doc["rows"] = nlohmann::json::array();
  for (const auto& g : rows) {
    doc["rows"].push_back({{"probe", g.probe},
                           {"tap_index", g.tap_index},
                           {"tap", g.tap},
                           {"metric", g.metric},
                           {"pretrained", value(g.pretrained)},
                           {"pretrained_low", value(g.pretrained_low)},
                           {"pretrained_high", value(g.pretrained_high)},
                           {"random_mean", value(g.random_mean)},
                           {"random_sd", value(g.random_sd)},
                           {"random_seeds", g.random_seeds},
                           {"gain", value(g.gain)},
                           {"gain_low", value(g.gain_low)},
                           {"gain_high", value(g.gain_high)},
                           {"p_value", value(g.p_value)},
                           {"relative_gain", value(g.relative_gain)},
                           {"sweet_spot", g.sweet_spot},
                           {"max_gain", g.max_gain},
                           {"parameters", g.parameters},
                           {"macs", g.macs},
                           {"feature_dim", g.feature_dim}});
    if (g.sweet_spot) doc["summary"][g.probe][g.metric]["sweet_spot"] = g.tap;
    if (g.max_gain) doc["summary"][g.probe][g.metric]["max_gain"] = g.tap;
  }
  doc["transferability"] = nlohmann::json::array();
  for (const auto& t : transferability)
    doc["transferability"].push_back({{"tap_index", t.tap_index},
                                      {"tap", t.tap},
                                      {"metric", t.metric},
                                      {"pretrained", value(t.pretrained)},
                                      {"random_mean", value(t.random_mean)},
                                      {"random_sd", value(t.random_sd)}});
  for (const auto& [name, rho] : rank_agreement) doc["rank_agreement"][name] = value(rho);
  doc["rank_agreement_with"] = probe_metric;
  for (const auto& [name, v] : source_transferability) doc["source_transferability"][name] = value(v);
  write_file_atomically(path, doc.dump(2) + "\n");
}

void write_transferability_csv(const std::string& path, const StudyLabels& labels,
                               const std::vector<TransferabilityRow>& rows) {
  std::ostringstream out;
  out << "dataset,backbone,tap_index,tap,metric,pretrained,random_mean,random_sd\n";
  for (const auto& t : rows)
    out << csv_field(labels.dataset) << ',' << csv_field(labels.backbone) << ',' << t.tap_index << ','
        << csv_field(t.tap) << ',' << t.metric << ',' << csv_number(t.pretrained) << ',' << csv_number(t.random_mean)
        << ',' << csv_number(t.random_sd) << '\n';
  write_file_atomically(path, out.str());
}

void write_splits_csv(const std::string& path, const std::vector<Sample>& samples,
                      const std::vector<std::string>& classes, const SplitPlan& plan) {
  // One row per image and fold: where the image was in that fold.
  std::vector<std::vector<char>> side(plan.folds.size(), std::vector<char>(samples.size(), '-'));
  for (std::size_t f = 0; f < plan.folds.size(); ++f) {
    for (auto i : plan.folds[f].train) side[f][i] = 'r';
    for (auto i : plan.folds[f].test) side[f][i] = 'e';
  }
  std::ostringstream out;
  out << "path,label,group,dataset_split,fold,role\n";
  for (std::size_t f = 0; f < plan.folds.size(); ++f)
    for (std::size_t i = 0; i < samples.size(); ++i)
      out << csv_field(samples[i].path) << ',' << csv_field(classes[samples[i].label]) << ','
          << csv_field(samples[i].group) << ',' << samples[i].split << ',' << f << ','
          << (side[f][i] == 'r'   ? "train"
              : side[f][i] == 'e' ? "test"
                                  : "unused")
          << '\n';
  write_file_atomically(path, out.str());
}

void write_taps_csv(const std::string& path, const std::vector<TapInfo>& taps) {
  std::ostringstream out;
  out << "tap_index,tap,shape,feature_dim,parameters,macs\n";
  for (std::size_t t = 0; t < taps.size(); ++t) {
    std::string shape;
    for (auto d : taps[t].shape) shape += (shape.empty() ? "" : "x") + std::to_string(d);
    out << t << ',' << csv_field(taps[t].name) << ',' << shape << ',' << taps[t].feature_dim << ','
        << taps[t].parameters << ',' << taps[t].macs << '\n';
  }
  write_file_atomically(path, out.str());
}

}  // namespace kgain::core
