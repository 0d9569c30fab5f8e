#include "compare/loaded_run.hpp"

#include <filesystem>
#include <set>

#include <toml++/toml.h>

#include "extract/feature_store.hpp"
#include "runtime/text_file.hpp"

namespace fs = std::filesystem;

namespace kgain::core {
namespace {

std::string read_run_file(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name;
  const auto text = read_text_file(path);
  if (!text) throw std::runtime_error("cannot read " + path + ": is '" + dir + "' a finished kgain run directory?");
  return *text;
}

// A predictions file must have been made by the run whose directory holds it: a file copied in
// from another run (or another draw of images) would put that run's scores under this one's name.
void check_made_here(const RunPredictions& p, const std::string& file, const std::string& resolved,
                     const std::string& splits, const nlohmann::json& info) {
  const auto refuse = [&](const std::string& what) {
    throw std::runtime_error(file + " was not made by the run in its directory (" + what +
                             "); it was copied from another run. Rerun 'kgain run' with this directory's "
                             "config.resolved.toml to write it again (stored features are reused)");
  };
  if (p.config_hash != hash_hex(resolved)) refuse("it was made under another config.resolved.toml");
  if (p.splits_hash != hash_hex(splits)) refuse("it was made for another splits.csv: other images or folds");
  if (!info.contains("backbone_fingerprint") || p.backbone_fingerprint != info["backbone_fingerprint"])
    refuse("it was made with other backbone weights than run.json's");
}

}  // namespace

nlohmann::json read_run_json(const std::string& dir, const std::string& name) {
  try {
    return nlohmann::json::parse(read_run_file(dir, name));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(dir + "/" + name + " is not valid JSON (" + e.what() +
                             "); rerun 'kgain run' to rewrite it");
  }
}

LoadedRun load_run(const std::string& dir) {
  LoadedRun run;
  run.info.dir = dir;
  const std::string resolved = read_run_file(dir, "config.resolved.toml");
  run.config = parse_config(resolved, dir + "/config.resolved.toml");
  const nlohmann::json info = read_run_json(dir, "run.json"), gain = read_run_json(dir, "gain.json");
  run.info.label = info.value("name", dir);
  run.info.backbone = gain.value("backbone", "");
  for (const char* key : {"file", "weights"})
    if (run.config.backbone.options.has(key))
      run.info.weights = fs::path(run.config.backbone.options.get_path(key, "")).filename().string();
  for (const auto& c : info.at("dataset").at("classes")) run.classes.push_back(c.at("name").get<std::string>());
  const std::string splits_text = read_run_file(dir, "splits.csv");
  run.splits = parse_splits_csv(splits_text, dir + "/splits.csv");
  std::ostringstream metrics;
  metrics << *toml::parse(resolved)["metrics"].as_table();
  run.metrics_table = metrics.str();
  std::vector<fs::path> files;
  if (fs::is_directory(dir + "/predictions"))
    for (const auto& e : fs::directory_iterator(dir + "/predictions"))
      if (e.path().extension() == ".kgpred") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    RunPredictions p = read_predictions_file(f.string());
    check_made_here(p, f.string(), resolved, splits_text, info);
    const std::string probe = p.probe;
    run.predictions.emplace(probe, std::move(p));
  }
  if (run.predictions.empty())
    throw std::runtime_error(
        dir +
        "/predictions holds no predictions file: the run was made before kgain saved them, or with [analysis] "
        "save_predictions = false; rerun 'kgain run' with its config (stored features are reused)");
  return run;
}

void check_same_splits(const LoadedRun& a, const LoadedRun& b) {
  const auto differ = [&](const std::string& what) {
    throw std::runtime_error(
        b.info.dir + "/splits.csv and " + a.info.dir + "/splits.csv differ (" + what +
        "): the runs did not test on the same images, so they cannot be compared image by image. Give both the "
        "same [dataset], limit_per_class and [splits]; 'kgain compare' without --paired compares any runs");
  };
  if (a.splits.size() != b.splits.size())
    differ(std::to_string(a.splits.size()) + " rows against " + std::to_string(b.splits.size()));
  for (std::size_t i = 0; i < a.splits.size(); ++i) {
    const SplitRow &x = a.splits[i], &y = b.splits[i];
    if (x.path != y.path || x.label != y.label || x.group != y.group || x.dataset_split != y.dataset_split ||
        x.fold != y.fold || x.role != y.role)
      differ("first at line " + std::to_string(i + 2) + ": " + x.path + " " + x.role + " against " + y.path + " " +
             y.role);
  }
  if (a.classes != b.classes) differ("the classes differ");
}

void check_predictions_match_splits(const LoadedRun& run, const RunPredictions& p) {
  const std::string where = run.info.dir + "/predictions (probe '" + p.probe + "')";
  const std::size_t folds = p.test_images.size();
  if (folds == 0 || run.splits.size() % folds != 0)
    throw std::runtime_error(where + " does not match splits.csv's folds");
  const std::size_t images = run.splits.size() / folds;
  if (p.image_identities.size() != images)
    throw std::runtime_error(where + " records " + std::to_string(p.image_identities.size()) +
                             " image identities for splits.csv's " + std::to_string(images) +
                             " images; rerun 'kgain run' into this directory");
  for (std::size_t f = 0; f < folds; ++f) {
    std::vector<std::int64_t> tested;
    for (std::size_t i = 0; i < images; ++i) {
      const SplitRow& row = run.splits[f * images + i];
      if (row.fold != static_cast<int>(f))
        throw std::runtime_error(where + ": splits.csv's fold " + std::to_string(f) + " is not where expected");
      if (row.role == "test") tested.push_back(static_cast<std::int64_t>(i));
    }
    std::vector<std::int64_t> stored = p.test_images[f];
    std::sort(stored.begin(), stored.end());
    if (stored != tested)
      throw std::runtime_error(where + ": fold " + std::to_string(f) +
                               "'s test images are not those of splits.csv; the "
                               "files come from different runs. Rerun 'kgain run' into this directory");
    const auto& labels = p.predictions.at(0).at(0).at(f).labels;
    for (std::size_t k = 0; k < labels.size(); ++k) {
      const auto label = static_cast<std::size_t>(labels[k]);
      const auto image = static_cast<std::size_t>(p.test_images[f][k]);
      if (label >= run.classes.size() || run.classes[label] != run.splits[f * images + image].label)
        throw std::runtime_error(where + ": the label of " + run.splits[f * images + image].path +
                                 " is not splits.csv's");
    }
  }
}

void check_same_content(const LoadedRun& a, const LoadedRun& b, const std::vector<std::uint64_t>& of_b,
                        const std::vector<std::uint64_t>& of_a) {
  // Both lists were checked against their splits.csv, and the splits.csv files against each other.
  for (std::size_t i = 0; i < of_a.size() && i < of_b.size() && i < a.splits.size(); ++i)
    if (of_a[i] != of_b[i])
      throw std::runtime_error(a.splits[i].path + " had other content when " + b.info.dir + " was run than when " +
                               a.info.dir +
                               " was run (the file was replaced under the same path): the runs did not test the same "
                               "images, so they cannot be compared image by image. Rerun both on the same files");
}

}  // namespace kgain::core
