// paired.csv and paired.json of `kgain compare --paired` (paired_comparison.hpp).
#include <sstream>

#include <nlohmann/json.hpp>

#include "compare/paired_comparison.hpp"
#include "extract/durable_file.hpp"
#include "write/json_number.hpp"
#include "write/results.hpp"

namespace kgain::core {

void write_paired_csv(const std::string& path, const PairedComparison& c) {
  std::ostringstream out;
  out << "dataset,probe,metric,tap_index,tap,run_a,run_b,score_a,score_b,score_difference,score_low,score_high,score_p,"
         "score_q,gain_a,gain_b,gain_difference,gain_low,gain_high,gain_p,gain_q\n";
  for (const auto& r : c.rows)
    out << csv_field(c.dataset) << ',' << csv_field(r.probe) << ',' << csv_field(r.metric) << ',' << r.tap_index << ','
        << csv_field(r.tap) << ',' << csv_field(c.runs[r.run_a].label) << ',' << csv_field(c.runs[r.run_b].label) << ','
        << csv_number(r.score_a) << ',' << csv_number(r.score_b) << ',' << csv_number(r.score_difference) << ','
        << csv_number(r.score_low) << ',' << csv_number(r.score_high) << ',' << csv_number(r.score_p) << ','
        << csv_number(r.score_q) << ',' << csv_number(r.gain_a) << ',' << csv_number(r.gain_b) << ','
        << csv_number(r.gain_difference) << ',' << csv_number(r.gain_low) << ',' << csv_number(r.gain_high) << ','
        << csv_number(r.gain_p) << ',' << csv_number(r.gain_q) << '\n';
  write_file_atomically(path, out.str());
}

void write_paired_json(const std::string& path, const PairedComparison& c) {
  const auto value = json_number;
  nlohmann::json j{{"dataset", c.dataset},
                   {"taps", c.taps},
                   {"probes", c.probes},
                   {"metrics", c.metrics},
                   {"higher_is_better", c.higher_is_better},
                   {"shared_random_draw", c.shared_random_draw},
                   {"identical_random_baselines", c.identical_random_baselines},
                   {"bootstrap", c.replicates},
                   {"confidence", c.confidence},
                   {"seed", c.seed},
                   {"runs", nlohmann::json::array()},
                   {"rows", nlohmann::json::array()}};
  for (const auto& r : c.runs)
    j["runs"].push_back({{"dir", r.dir}, {"label", r.label}, {"backbone", r.backbone}, {"weights", r.weights}});
  for (const auto& r : c.rows)
    j["rows"].push_back({{"probe", r.probe},
                         {"metric", r.metric},
                         {"tap_index", r.tap_index},
                         {"tap", r.tap},
                         {"run_a", r.run_a},
                         {"run_b", r.run_b},
                         {"score_a", value(r.score_a)},
                         {"score_b", value(r.score_b)},
                         {"score_difference", value(r.score_difference)},
                         {"score_low", value(r.score_low)},
                         {"score_high", value(r.score_high)},
                         {"score_p", value(r.score_p)},
                         {"score_q", value(r.score_q)},
                         {"gain_a", value(r.gain_a)},
                         {"gain_b", value(r.gain_b)},
                         {"gain_difference", value(r.gain_difference)},
                         {"gain_low", value(r.gain_low)},
                         {"gain_high", value(r.gain_high)},
                         {"gain_p", value(r.gain_p)},
                         {"gain_q", value(r.gain_q)}});
  write_file_atomically(path, j.dump(1) + "\n");
}

}  // namespace kgain::core
