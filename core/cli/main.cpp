// kgain: the command line. One function per command; each returns the process exit code.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include <boost/program_options.hpp>
#include <c10/util/Exception.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "runtime/allocator.hpp"
#include "runtime/build_info.hpp"
#include "runtime/machine.hpp"
#include "config/bundled_defaults.hpp"
#include "config/config.hpp"
#include "plan/data_summary.hpp"
#include "plan/option_table.hpp"
#include "runtime/progress.hpp"
#include "plan/registry.hpp"
#include "write/report.hpp"
#include "write/results.hpp"
#include "study/run.hpp"
#include "runtime/torch_runtime.hpp"

namespace po = boost::program_options;
using namespace kgain;
using namespace kgain::core;

namespace {

const char* usage = "kgain " KGAIN_VERSION
                    " — layer-wise knowledge gain of pretrained CNNs on pathology images\n\n"
                    "usage: kgain <command> [options]\n\n"
                    "commands:\n"
                    "  run CONFIG        run the study a config describes; writes a run directory\n"
                    "  list              list the plugins found, with kind, name, version and library\n"
                    "                    (--options NAME: the options a plugin declares)\n"
                    "  inspect TARGET    show a backbone's taps: output shape, feature size, parameters, MACs\n"
                    "                    (TARGET: a config file, or a TorchScript file)\n"
                    "  data TARGET       describe a dataset as kgain sees it: classes, groups, split, bad files\n"
                    "                    (TARGET: a config file, or a folder with manifest.csv or class subfolders)\n"
                    "  report RUN_DIR    redraw RUN_DIR/report.html from the run's files\n"
                    "  compare RUN_DIR... --out FILE\n"
                    "                    put several runs on the same axes in one HTML page\n"
                    "  compare --paired RUN_DIR... --out FILE\n"
                    "                    runs on the same images and splits, compared tap by tap with paired\n"
                    "                    bootstrap intervals (FILE, plus the .csv and .json beside it)\n\n"
                    "'kgain <command> --help' describes a command's options.\n";

// Parses a command's options; prints help and returns false when --help was asked.
bool parse(const std::vector<std::string>& args, po::options_description& visible,
           const po::options_description& hidden, const po::positional_options_description& positional,
           po::variables_map& vm, const char* synopsis) {
  po::options_description all;
  all.add(visible).add(hidden);
  po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
  if (vm.count("help")) {
    std::cout << synopsis << "\n\n" << visible << '\n';
    return false;
  }
  po::notify(vm);
  return true;
}

void set_log_level(const po::variables_map& vm) {
  if (vm.count("quiet") && vm["quiet"].as<bool>()) {
    spdlog::set_level(spdlog::level::warn);
    Progress::enable(false);
  } else
    spdlog::set_level(spdlog::level::from_str(vm["log-level"].as<std::string>()));
}

// The summary table after a run: the first probe's first metric, per tap.
void print_gain_table(const Config& config, const RunSummary& s) {
  const std::string metric = config.metrics.front().name, probe = config.probes.front().name;
  std::printf("\n%s on %s — %s probe, %s (%s split, %lld images, %zu random seeds)\n", config.backbone.name.c_str(),
              config.dataset.name.c_str(), probe.c_str(), metric.c_str(), s.split_strategy.c_str(),
              static_cast<long long>(s.images), config.random_seeds.size());
  std::fputs(format_gain_table(s.gain, probe, metric).c_str(), stdout);
  if (!s.gain.empty() && std::isnan(s.gain.front().pretrained))
    std::printf("\nno pretrained weights: random variants only (pretrained and gain are not defined)\n");
}

int command_run(const std::vector<std::string>& args) {
  po::options_description visible("options");
  visible.add_options()("help,h", "describe the options")("out,o", po::value<std::string>(),
                                                          "run directory (default: runs/<config name>)")(
      "replace", po::bool_switch(), "replace a run of another config in the run directory")(
      "quiet,q", po::bool_switch(), "print warnings and errors only")(
      "log-level", po::value<std::string>()->default_value("info"), "trace, debug, info, warn or error");
  po::options_description hidden;
  hidden.add_options()("config", po::value<std::string>()->required(), "config file");
  po::positional_options_description positional;
  positional.add("config", 1);
  po::variables_map vm;
  if (!parse(args, visible, hidden, positional, vm, "usage: kgain run CONFIG [options]")) return 0;
  set_log_level(vm);

  const Config config = load_config(vm["config"].as<std::string>());
  RunOptions options;
  if (vm.count("out")) options.out_dir = vm["out"].as<std::string>();
  options.replace_other = vm["replace"].as<bool>();
  const RunSummary s = run_study(config, options);
  if (!s.root) return 0;  // another rank of an MPI job: rank 0 reports

  print_gain_table(config, s);
  std::printf("\nintervals: %.0f%% paired bootstrap (%d replicates); results: %s/gain.csv, %s/results.csv (%.1f s)\n",
              100 * config.confidence, config.bootstrap, s.run_dir.c_str(), s.run_dir.c_str(), s.seconds);
  return 0;
}

int command_list(const std::vector<std::string>& args) {
  po::options_description visible("options");
  visible.add_options()("help,h", "describe the options")(
      "plugin-dir,p", po::value<std::vector<std::string>>()->composing(), "also search this folder (repeatable)")(
      "options", po::value<std::string>(), "the options plugin NAME declares: type, accepted values, default, meaning")(
      "markdown", po::bool_switch(), "every declared option as the rows of docs/config.md's plugin key table");
  po::variables_map vm;
  if (!parse(args, visible, {}, {}, vm, "usage: kgain list [--options NAME | --markdown] [options]")) return 0;
  std::vector<std::string> dirs;
  if (vm.count("plugin-dir")) dirs = vm["plugin-dir"].as<std::vector<std::string>>();
  const Registry registry = load_registry(dirs);
  if (vm.count("options"))
    return std::fputs(option_table_text(registry, vm["options"].as<std::string>()).c_str(), stdout), 0;
  if (vm["markdown"].as<bool>()) return std::fputs(option_table_markdown(registry).c_str(), stdout), 0;
  std::printf("%-14s %-20s %-8s %-44s %s\n", "kind", "name", "version", "summary", "library");
  for (PluginKind kind :
       {PluginKind::dataset, PluginKind::backbone, PluginKind::probe, PluginKind::metric, PluginKind::feature_metric})
    for (const auto& p : registry.plugins())
      if (p.info.kind == kind)
        std::printf("%-14s %-20s %-8s %-44s %s\n", to_string(kind), p.info.name, p.info.version, p.info.summary,
                    p.library_path.c_str());
  for (const auto& r : registry.refused()) std::printf("\nrefused %s:\n  %s\n", r.path.c_str(), r.reason.c_str());
  std::printf("\nsearched:");
  for (const auto& d : dirs) std::printf(" %s", d.c_str());
  for (const auto& d : Registry::default_directories()) std::printf(" %s", d.c_str());
  std::printf("\n");
  return registry.plugins().empty() ? 1 : 0;
}

int command_data(const std::vector<std::string>& args) {
  po::options_description visible("options");
  visible.add_options()("help,h", "describe the options")("no-images", po::bool_switch(),
                                                          "do not decode the images (faster; no sizes or bad files)")(
      "plugin", po::value<std::string>(),
      ("for a folder: the dataset plugin (default: " + bundled_default("data", "with_manifest") +
       " when manifest.csv exists, else " + bundled_default("data", "without_manifest") + ")")
          .c_str())("plugin-dir,p", po::value<std::vector<std::string>>()->composing(),
                    "also search this folder (repeatable)");
  po::options_description hidden;
  hidden.add_options()("target", po::value<std::string>()->required(), "config or folder");
  po::positional_options_description positional;
  positional.add("target", 1);
  po::variables_map vm;
  if (!parse(args, visible, hidden, positional, vm, "usage: kgain data CONFIG|FOLDER [options]")) return 0;
  const std::string target = vm["target"].as<std::string>();
  std::vector<std::string> dirs;
  if (vm.count("plugin-dir")) dirs = vm["plugin-dir"].as<std::vector<std::string>>();
  PluginSection section;
  std::string strategy = "auto";
  int folds = 5;
  std::uint64_t seed = 0;
  std::int64_t limit = 0;
  if (target.size() > 5 && target.substr(target.size() - 5) == ".toml") {
    const Config config = load_config(target);
    section = config.dataset;
    strategy = config.split_strategy, folds = config.folds, seed = config.split_seed, limit = config.limit_per_class;
    dirs.insert(dirs.end(), config.plugin_paths.begin(), config.plugin_paths.end());
  } else {
    if (!std::filesystem::is_directory(target))
      throw std::runtime_error("'" + target + "' is neither a .toml config nor a folder");
    section.plugin = vm.count("plugin")                                  ? vm["plugin"].as<std::string>()
                     : std::filesystem::exists(target + "/manifest.csv") ? bundled_default("data", "with_manifest")
                                                                         : bundled_default("data", "without_manifest");
    section.options = Options("dataset", "");
    section.options.set("root", target, "command line");
  }
  const Registry registry = load_registry(dirs);
  auto dataset = registry.create<Dataset>(section);
  const auto samples = limit_per_class(dataset->samples(), limit, seed);
  const auto classes = dataset->class_names();
  const SplitPlan plan = make_splits(samples, static_cast<int>(classes.size()), strategy, folds, seed);
  std::printf("%s", describe_dataset(dataset->description() + " (plugin " + section.plugin + ")", classes, samples,
                                     plan, !vm["no-images"].as<bool>(), dataset.get())
                        .c_str());
  if (const std::string report = dataset->data_report(); !report.empty()) std::printf("\n%s", report.c_str());
  if (const auto warnings = dataset->warnings(); !warnings.empty()) {
    std::printf("\ndataset warnings:\n");
    for (const auto& w : warnings) std::printf("  - %s\n", w.c_str());
  }
  return 0;
}

int command_report(const std::vector<std::string>& args) {
  po::options_description visible("options");
  visible.add_options()("help,h", "describe the options");
  po::options_description hidden;
  hidden.add_options()("run-dir", po::value<std::string>()->required(), "run directory");
  po::positional_options_description positional;
  positional.add("run-dir", 1);
  po::variables_map vm;
  if (!parse(args, visible, hidden, positional, vm, "usage: kgain report RUN_DIR")) return 0;
  std::printf("%s\n", write_report(vm["run-dir"].as<std::string>()).c_str());
  return 0;
}

int command_compare(const std::vector<std::string>& args) {
  po::options_description visible("options");
  visible.add_options()("help,h", "describe the options")(
      "out,o", po::value<std::string>()->default_value("compare.html"),
      "the HTML file to write (--paired: also FILE's stem .csv and .json)")(
      "paired", po::bool_switch()->default_value(false),
      "runs on the same images and splits: paired differences tap by tap")(
      "bootstrap", po::value<int>(), "--paired: bootstrap replicates (default: the first run's [analysis] bootstrap)")(
      "confidence", po::value<double>(), "--paired: interval level (default: the first run's)")(
      "seed", po::value<std::uint64_t>()->default_value(0), "--paired: bootstrap seed")(
      "threads,j", po::value<int>()->default_value(0), "--paired: worker threads (0: every core)")(
      "plugin-dir,p", po::value<std::vector<std::string>>()->composing(),
      "--paired: also search this folder for metric plugins");
  po::options_description hidden;
  hidden.add_options()("run-dirs", po::value<std::vector<std::string>>()->required()->multitoken(), "run directories");
  po::positional_options_description positional;
  positional.add("run-dirs", -1);
  po::variables_map vm;
  if (!parse(args, visible, hidden, positional, vm, "usage: kgain compare [--paired] RUN_DIR... [--out FILE]"))
    return 0;
  const auto dirs = vm["run-dirs"].as<std::vector<std::string>>();
  const std::string out = vm["out"].as<std::string>();
  if (!vm["paired"].as<bool>()) {
    write_comparison(dirs, out);
    std::printf("%s\n", out.c_str());
    return 0;
  }
  PairedSettings settings;
  if (vm.count("bootstrap")) settings.replicates = vm["bootstrap"].as<int>();
  if (vm.count("confidence")) settings.confidence = vm["confidence"].as<double>();
  if (settings.replicates < -1 || settings.replicates > 1000000)
    throw std::runtime_error("--bootstrap must be between 0 and 1000000");
  if (vm.count("confidence") && !(settings.confidence >= 0.5 && settings.confidence <= 0.999))
    throw std::runtime_error("--confidence must be between 0.5 and 0.999");
  settings.seed = vm["seed"].as<std::uint64_t>();
  const int threads = vm["threads"].as<int>();
  settings.threads = threads > 0 ? threads : core::hardware_threads();
  if (vm.count("plugin-dir")) settings.plugin_paths = vm["plugin-dir"].as<std::vector<std::string>>();
  const PairedComparison comparison = compare_runs(dirs, settings);
  const std::filesystem::path html(out);
  const std::string stem = (html.parent_path() / html.stem()).string();
  write_paired_csv(stem + ".csv", comparison);
  write_paired_json(stem + ".json", comparison);
  write_paired_report(comparison, out);
  std::printf("%s\n%s.csv\n%s.json\n", out.c_str(), stem.c_str(), stem.c_str());
  return 0;
}

int command_inspect(const std::vector<std::string>& args) {
  po::options_description visible("options");
  visible.add_options()("help,h", "describe the options")(
      "input-size,s", po::value<std::int64_t>(), "input side in pixels (default: the config's, else the native size)")(
      "container", po::value<std::string>()->default_value("features"),
      "for a TorchScript file: the container whose children are taps")(
      "weights", po::value<std::string>(), "for an architecture name: a state dict file (torch.save)")(
      "padding", po::value<std::string>(), "for a MobileNet architecture: torch or tf_same")(
      "width", po::value<double>(), "for mobilenet_v1: the width multiplier")(
      "plugin-dir,p", po::value<std::vector<std::string>>()->composing(), "also search this folder (repeatable)");
  po::options_description hidden;
  hidden.add_options()("target", po::value<std::string>()->required(), "config, TorchScript file or architecture name");
  po::positional_options_description positional;
  positional.add("target", 1);
  po::variables_map vm;
  if (!parse(args, visible, hidden, positional, vm,
             "usage: kgain inspect CONFIG|MODEL.ts.pt|ARCHITECTURE [options]\n"
             "  ARCHITECTURE: a native backbone such as resnet50 (kgain list shows the plugin)"))
    return 0;
  const std::string target = vm["target"].as<std::string>();

  std::vector<std::string> dirs;
  if (vm.count("plugin-dir")) dirs = vm["plugin-dir"].as<std::vector<std::string>>();
  PluginSection section;
  std::int64_t input_size = 0;
  if (target.size() > 5 && target.substr(target.size() - 5) == ".toml") {
    Config config = load_config(target);
    section = config.backbone;
    input_size = config.input_size;
    dirs.insert(dirs.end(), config.plugin_paths.begin(), config.plugin_paths.end());
  } else if (std::filesystem::exists(target)) {
    section.plugin = bundled_default("inspect", "file");
    section.options = Options("backbone", "");
    section.options.set("file", target, "command line");
    section.options.set("container", vm["container"].as<std::string>(), "--container");
  } else {  // an architecture of the native backbone
    section.plugin = bundled_default("inspect", "architecture");
    section.options = Options("backbone", "");
    section.options.set("architecture", target, "command line");
    if (vm.count("weights")) section.options.set("weights", vm["weights"].as<std::string>(), "--weights");
    if (vm.count("padding")) section.options.set("padding", vm["padding"].as<std::string>(), "--padding");
    if (vm.count("width")) section.options.set("width", vm["width"].as<double>(), "--width");
  }
  const Registry registry = load_registry(dirs);
  auto backbone = registry.create<Backbone>(section);
  if (vm.count("input-size")) input_size = vm["input-size"].as<std::int64_t>();
  if (input_size <= 0) input_size = backbone->native_input_size();
  set_threads(0);
  const auto taps = backbone->inspect(input_size);
  std::printf("%s\ninput %lld x %lld px, %zu taps\n\n", backbone->description().c_str(),
              static_cast<long long>(input_size), static_cast<long long>(input_size), taps.size());
  int width = 24;  // the tap column fits the longest name (ViT: encoder.layers.encoder_layer_11)
  for (const auto& t : taps) width = std::max(width, static_cast<int>(t.name.size()));
  std::printf("%-4s %-*s %-18s %10s %14s %16s\n", "#", width, "tap", "output shape", "features", "parameters", "MACs");
  for (std::size_t i = 0; i < taps.size(); ++i) {
    std::string shape;
    for (auto d : taps[i].shape) shape += (shape.empty() ? "" : "x") + std::to_string(d);
    const std::string macs = taps[i].macs < 0 ? "unknown" : std::to_string(taps[i].macs);
    std::printf("%-4zu %-*s %-18s %10lld %14lld %16s\n", i, width, taps[i].name.c_str(), shape.c_str(),
                static_cast<long long>(taps[i].feature_dim), static_cast<long long>(taps[i].parameters), macs.c_str());
  }
  std::printf(
      "\nparameters and MACs (multiply-accumulates of convolutions, linear layers and attention's matrix\n"
      "products, per image) count the network up to and including each tap. features: per pooled part\n"
      "(avgmax and cls_mean concatenate two).\n");
  return 0;
}

// LibTorch's warnings, through kgain's log instead of glog-style lines on stderr. One is only
// LibTorch talking to itself (its frozen graphs resize their own output buffers when a batch is
// smaller than the last one, which 1.13 reports as a deprecation on every run): debug level.
class LogTorchWarnings : public c10::WarningHandler {
 public:
  void process(const c10::SourceLocation& where, const std::string& message, const bool) override {
    if (message.find("An output with one or more elements was resized") != std::string::npos)
      spdlog::debug("LibTorch ({}:{}): {}", where.file, where.line, message);
    else
      spdlog::warn("LibTorch ({}:{}): {}", where.file, where.line, message);
  }
};

}  // namespace

int main(int argc, char** argv) {
  keep_freed_memory_for_reuse();   // before any thread: activations are reused, not re-faulted (allocator.hpp)
  run_graphs_without_profiling();  // inference graphs need no profiling executor (torch_runtime.hpp)
  // Logs and progress go to stderr; stdout carries the command's result (tables).
  spdlog::set_default_logger(spdlog::stderr_color_mt("kgain"));
  spdlog::set_pattern("[%H:%M:%S] [%^%l%$] %v");
  static LogTorchWarnings torch_warnings;
  c10::Warning::set_warning_handler(&torch_warnings);
  if (argc < 2) {
    std::cerr << usage;
    return 2;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  const std::map<std::string, int (*)(const std::vector<std::string>&)> commands{
      {"run", command_run},   {"list", command_list},     {"inspect", command_inspect},
      {"data", command_data}, {"report", command_report}, {"compare", command_compare}};
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << usage;
    return 0;
  }
  if (command == "--version") {
    std::cout << "kgain " << KGAIN_VERSION << " (plugin ABI " << KGAIN_ABI_VERSION << ", LibTorch " << TORCH_VERSION
              << ")\n";
    return 0;
  }
  const auto it = commands.find(command);
  if (it == commands.end()) {
    std::cerr << "kgain: unknown command '" << command << "'\n\n" << usage;
    return 2;
  }
  try {
    return it->second(args);
  } catch (const po::error& e) {
    std::cerr << "kgain " << command << ": " << e.what() << " (see 'kgain " << command << " --help')\n";
    return 2;
  } catch (const c10::Error& e) {
    // LibTorch's own message, without its C++ stack trace (of no use to a user).
    std::cerr << "kgain " << command << ": error: " << e.what_without_backtrace() << '\n';
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "kgain " << command
              << ": error: out of memory (a smaller [run] batch_size, [features] input_size or fewer "
                 "[run] decode_threads lower the peak)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "kgain " << command << ": error: " << e.what() << '\n';
    return 1;
  }
}
