// Probe speed: kgain's probes on saved features, the kgain side of bench/probe_speed.sh.
//
//   ./build/bench/kgain_bench_probes DIR --probe logistic [--threads 2] [--set C=1 --set tol=1e-4 ...]
//                                    [--out accuracy.csv] [--per-tap] [--fold-by-fold]
//
// DIR is what `bench/python_reference.py --save-features DIR` wrote (V_T.npy float32 [n, d],
// labels.npy int64, roles.npy int8 [folds, n], variants.txt), so that kgain and scikit-learn
// (bench/probe_reference.py) fit the very same features. Every (variant, tap, fold) is one fit,
// or every (variant, tap) one fit_folds() for a probe that fits its folds together, run as a
// study runs them (core/evaluation.cpp): widest taps first, `--threads` workers side by side, one
// BLAS thread each (core/blas_threads.hpp), with kgain's allocator setting (core/allocator.hpp).
// Timed: fit and predict_proba (or fit_folds) of every problem, not loading. Prints
// fits, seconds and fits/s; writes variant,tap_index,accuracy (mean over folds). --per-tap also
// prints, for each tap, its width and the mean milliseconds of its fits (each fit timed alone,
// fit and predict_proba, on whichever worker ran it; a fit_folds() counts as its folds' fits).
// --fold-by-fold fits a probe that could fit its folds together one fold at a time instead.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <ATen/ATen.h>

#include "runtime/allocator.hpp"
#include "runtime/blas_threads.hpp"
#include "plan/registry.hpp"
#include <kgain/probe.hpp>

using namespace kgain;

namespace {

// A little-endian, C-order .npy file of float32, int64 or int8 (what numpy.save writes).
at::Tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  char magic[10];
  in.read(magic, 10);
  if (std::string(magic, 6) != "\x93NUMPY") throw std::runtime_error(path + ": not a .npy file");
  const std::size_t header_length =
      magic[6] == 1 ? static_cast<unsigned char>(magic[8]) | static_cast<unsigned char>(magic[9]) << 8 : 0;
  if (magic[6] != 1) throw std::runtime_error(path + ": only .npy version 1 is read");
  std::string header(header_length, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_length));
  if (header.find("'fortran_order': False") == std::string::npos) throw std::runtime_error(path + ": Fortran order");
  const auto shape_at = header.find("'shape': (");
  std::vector<std::int64_t> shape;
  std::stringstream dims(header.substr(shape_at + 10, header.find(')', shape_at) - shape_at - 10));
  for (std::string d; std::getline(dims, d, ',');)
    if (d.find_first_not_of(' ') != std::string::npos) shape.push_back(std::stoll(d));
  const at::ScalarType type = header.find("'<f4'") != std::string::npos   ? at::kFloat
                              : header.find("'<i8'") != std::string::npos ? at::kLong
                              : header.find("'|i1'") != std::string::npos
                                  ? at::kChar
                                  : throw std::runtime_error(path + ": type not read here");
  at::Tensor t = at::empty(shape, type);
  in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  if (!in) throw std::runtime_error(path + ": truncated");
  return t;
}

std::vector<std::string> args_named(int argc, char** argv, const std::string& name) {
  std::vector<std::string> out;
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) out.push_back(argv[i + 1]);
  return out;
}

Options probe_options(const std::vector<std::string>& settings) {
  Options options("probe", "");
  for (const auto& s : settings) {
    const auto eq = s.find('=');
    const std::string key = s.substr(0, eq), value = s.substr(eq + 1);
    if (value.find_first_not_of("0123456789-") == std::string::npos)
      options.set(key, static_cast<std::int64_t>(std::stoll(value)));
    else if (value.find_first_not_of("0123456789.e-+") == std::string::npos)
      options.set(key, std::stod(value));
    else
      options.set(key, value);
  }
  return options;
}

struct Problem {
  std::size_t variant, tap, fold;
  bool all_folds;
};

}  // namespace

int main(int argc, char** argv) try {
  core::keep_freed_memory_for_reuse();  // as kgain itself starts (allocator.hpp)
  if (argc < 2 || args_named(argc, argv, "--probe").empty()) {
    std::cerr << "usage: kgain_bench_probes DIR --probe NAME [--threads N] [--set KEY=VALUE ...] [--out CSV]\n";
    return 2;
  }
  const std::string dir = argv[1], probe_name = args_named(argc, argv, "--probe").front();
  const auto threads_arg = args_named(argc, argv, "--threads");
  const int threads = threads_arg.empty() ? 2 : std::stoi(threads_arg.front());
  const auto out_arg = args_named(argc, argv, "--out");
  const Options options = probe_options(args_named(argc, argv, "--set"));

  std::vector<std::string> variants;
  std::ifstream variant_list(dir + "/variants.txt");
  for (std::string v; variant_list >> v;) variants.push_back(v);
  const at::Tensor labels = read_npy(dir + "/labels.npy"), roles = read_npy(dir + "/roles.npy");
  std::size_t taps = 0;
  while (std::ifstream(dir + "/" + variants.at(0) + "_" + std::to_string(taps) + ".npy")) ++taps;
  std::vector<std::vector<at::Tensor>> features(variants.size());
  for (std::size_t v = 0; v < variants.size(); ++v)
    for (std::size_t t = 0; t < taps; ++t)
      features[v].push_back(read_npy(dir + "/" + variants[v] + "_" + std::to_string(t) + ".npy"));
  const std::int64_t classes = labels.max().item<std::int64_t>() + 1;
  const auto folds = static_cast<std::size_t>(roles.size(0));
  std::vector<at::Tensor> train, test;
  for (std::size_t f = 0; f < folds; ++f) {
    train.push_back(roles[static_cast<std::int64_t>(f)].eq(1).nonzero().squeeze(1));
    test.push_back(roles[static_cast<std::int64_t>(f)].eq(2).nonzero().squeeze(1));
  }

  core::Registry registry;
  registry.add_directory(KGAIN_PLUGIN_DIR);
  const bool together = registry.create<Probe>(probe_name, options)->fits_folds_together() &&
                        std::find(argv + 1, argv + argc, std::string("--fold-by-fold")) == argv + argc;
  std::vector<FoldRows> fold_rows;
  for (std::size_t f = 0; f < folds; ++f) fold_rows.push_back({train[f], labels.index_select(0, train[f]), test[f]});
  std::vector<Problem> problems;
  for (std::size_t v = 0; v < variants.size(); ++v)
    for (std::size_t t = 0; t < taps; ++t)
      for (std::size_t f = 0; f < (together ? 1 : folds); ++f) problems.push_back({v, t, f, together});
  std::stable_sort(problems.begin(), problems.end(), [&](const Problem& a, const Problem& b) {
    return features[a.variant][a.tap].size(1) > features[b.variant][b.tap].size(1);
  });
  std::vector<std::vector<double>> accuracy(variants.size(), std::vector<double>(taps * folds));
  std::vector<double> fit_seconds(problems.size());
  std::vector<std::shared_ptr<Probe>> probes;
  for (std::size_t i = 0; i < problems.size(); ++i) probes.push_back(registry.create<Probe>(probe_name, options));

  core::SingleThreadedBlas one_blas_thread_per_fit;
  std::atomic<std::size_t> next{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w)
    workers.emplace_back([&] {
      at::set_num_threads(1);
      for (std::size_t i; (i = next++) < problems.size();) {
        const Problem& p = problems[i];
        const at::Tensor& x = features[p.variant][p.tap];
        const auto fit_start = std::chrono::steady_clock::now();
        std::vector<at::Tensor> probas;
        if (p.all_folds) {
          probas = probes[i]->fit_folds(x, fold_rows, classes, 0);
        } else {
          probes[i]->fit(x.index_select(0, train[p.fold]), fold_rows[p.fold].labels, classes, 0);
          probas.push_back(probes[i]->predict_proba(x.index_select(0, test[p.fold])));
        }
        fit_seconds[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - fit_start).count();
        for (std::size_t j = 0; j < probas.size(); ++j) {
          const std::size_t f = p.all_folds ? j : p.fold;
          accuracy[p.variant][p.tap * folds + f] =
              probas[j].argmax(1).eq(labels.index_select(0, test[f])).to(at::kDouble).mean().item<double>();
        }
      }
    });
  for (auto& w : workers) w.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::size_t fits = variants.size() * taps * folds;
  std::printf("kgain %s: %zu fits in %.2f s, %.2f fits/s (%d threads%s)\n", probe_name.c_str(), fits, seconds,
              static_cast<double>(fits) / seconds, threads, together ? ", folds together" : "");
  if (std::find(argv + 1, argv + argc, std::string("--per-tap")) != argv + argc) {
    std::vector<double> per_tap(taps, 0.0);
    for (std::size_t i = 0; i < problems.size(); ++i) per_tap[problems[i].tap] += fit_seconds[i];
    for (std::size_t t = 0; t < taps; ++t)
      std::printf("  tap %2zu  width %5lld  %8.1f ms per fit\n", t, static_cast<long long>(features[0][t].size(1)),
                  1000 * per_tap[t] / static_cast<double>(variants.size() * folds));
  }
  if (!out_arg.empty()) {
    std::ofstream out(out_arg.front());
    out << "variant,tap_index,accuracy\n";
    for (std::size_t v = 0; v < variants.size(); ++v)
      for (std::size_t t = 0; t < taps; ++t) {
        double mean = 0;
        for (std::size_t f = 0; f < folds; ++f) mean += accuracy[v][t * folds + f] / static_cast<double>(folds);
        char line[128];
        std::snprintf(line, sizeof line, "%s,%zu,%.6f\n", variants[v].c_str(), t, mean);
        out << line;
      }
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "kgain_bench_probes: " << e.what() << '\n';
  return 1;
}
