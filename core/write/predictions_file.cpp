#include "write/predictions_file.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include <kgain/util/file_hash.hpp>

#include "extract/durable_file.hpp"

namespace kgain::core {
namespace {

// 02 added "made_for" (files swapped between runs, or made on other images, were accepted).
constexpr char magic[8] = {'K', 'G', 'P', 'R', 'E', 'D', '0', '2'};
// Far beyond any real run; a header past them is damaged or forged, not large.
constexpr std::uint64_t max_header = 1ULL << 30;
constexpr std::int64_t max_classes = 1 << 20, max_names = 1 << 20;
// The fuzz build (tests/fuzz) skips the checksums so that mutated inputs reach the checks
// behind them; libFuzzer's conventional macro, never defined in a kgain build.
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr bool skip_checksums = true;
#else
constexpr bool skip_checksums = false;
#endif

void put_u64(std::string& out, std::uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }

std::uint64_t get_u64(const std::string& bytes, std::size_t at) {
  std::uint64_t v;
  std::memcpy(&v, bytes.data() + at, 8);
  return v;
}

std::vector<std::string> names(const nlohmann::json& header, const char* key, const std::string& where) {
  const auto& list = header.at(key);
  if (!list.is_array() || list.empty() || list.size() > static_cast<std::size_t>(max_names))
    throw std::runtime_error(where + ": '" + key + "' must be a non-empty list");
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& n : list) {
    out.push_back(n.get<std::string>());
    if (!seen.insert(out.back()).second)
      throw std::runtime_error(where + ": '" + out.back() + "' is listed twice in '" + key + "'");
  }
  return out;
}

std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::uint64_t parse_hex64(const std::string& text, const std::string& where) {
  if (text.size() != 16 || text.find_first_not_of("0123456789abcdef") != std::string::npos)
    throw std::runtime_error(where + ": an image identity is not 16 hex digits");
  return std::stoull(text, nullptr, 16);
}

nlohmann::json made_for(const RunPredictions& p) {
  nlohmann::json images = nlohmann::json::array();
  for (auto id : p.image_identities) images.push_back(hex64(id));
  return {
      {"config", p.config_hash}, {"splits", p.splits_hash}, {"backbone", p.backbone_fingerprint}, {"images", images}};
}

void read_made_for(const nlohmann::json& header, const std::string& where, RunPredictions& p) {
  const auto& m = header.at("made_for");
  p.config_hash = m.at("config").get<std::string>();
  p.splits_hash = m.at("splits").get<std::string>();
  p.backbone_fingerprint = m.at("backbone").get<std::string>();
  const auto& images = m.at("images");
  if (!images.is_array() || images.empty()) throw std::runtime_error(where + ": no image identities");
  for (const auto& id : images) p.image_identities.push_back(parse_hex64(id.get<std::string>(), where));
}

}  // namespace

void write_predictions_file(const std::string& path, const RunPredictions& p) {
  nlohmann::json header{{"probe", p.probe}, {"classes", p.num_classes},         {"variants", p.variants},
                        {"taps", p.taps},   {"folds", nlohmann::json::array()}, {"made_for", made_for(p)}};
  if (p.predictions.size() != p.variants.size())
    throw std::invalid_argument("predictions: one list per variant expected");
  for (std::size_t f = 0; f < p.test_images.size(); ++f) {
    const Predictions& first = p.predictions.at(0).at(0).at(f);
    if (first.labels.size() != p.test_images[f].size())
      throw std::invalid_argument("predictions: test images and labels differ in number");
    header["folds"].push_back({{"images", p.test_images[f]}, {"labels", first.labels}});
  }
  std::string scores;
  for (const auto& per_tap : p.predictions) {
    if (per_tap.size() != p.taps.size()) throw std::invalid_argument("predictions: one list per tap expected");
    for (const auto& per_fold : per_tap) {
      if (per_fold.size() != p.test_images.size())
        throw std::invalid_argument("predictions: one set per fold expected");
      for (std::size_t f = 0; f < per_fold.size(); ++f) {
        const Predictions& x = per_fold[f];
        if (x.num_classes != p.num_classes ||
            x.scores.size() != p.test_images[f].size() * static_cast<std::size_t>(p.num_classes) ||
            x.labels != p.predictions[0][0][f].labels)
          throw std::invalid_argument("predictions: a fold's predictions do not match its test images");
        scores.append(reinterpret_cast<const char*>(x.scores.data()), x.scores.size() * sizeof(double));
      }
    }
  }
  const std::string text = header.dump();
  std::string head(magic, 8);
  put_u64(head, text.size());
  head += text;
  put_u64(head, hash64(text.data(), text.size()));
  const std::uint64_t checksum = hash64(scores.data(), scores.size());
  write_file_atomically(path, {{head.data(), head.size()}, {scores.data(), scores.size()}, {&checksum, 8}});
}

RunPredictions parse_predictions(const std::string& bytes, const std::string& name) {
  const std::string where = name + " (a kgain predictions file)";
  if (bytes.size() < 16 || std::memcmp(bytes.data(), magic, 8) != 0)
    throw std::runtime_error(name +
                             " is not a kgain predictions file of this version; rerun 'kgain run' to write it again");
  const std::uint64_t header_size = get_u64(bytes, 8);
  if (header_size > max_header || header_size > bytes.size() - 16 || bytes.size() - 16 - header_size < 16)
    throw std::runtime_error(where + " is cut short or its header length is damaged; rerun 'kgain run'");
  const std::string text = bytes.substr(16, header_size);
  if (get_u64(bytes, 16 + header_size) != hash64(text.data(), text.size()) && !skip_checksums)
    throw std::runtime_error(where + " fails its header checksum: the file was damaged; rerun 'kgain run'");

  RunPredictions p;
  std::uint64_t doubles = 0;
  try {
    const auto header = nlohmann::json::parse(text);
    p.probe = header.at("probe").get<std::string>();
    p.num_classes = header.at("classes").get<std::int64_t>();
    if (p.num_classes < 2 || p.num_classes > max_classes)
      throw std::runtime_error(where + ": " + std::to_string(p.num_classes) + " classes");
    p.variants = names(header, "variants", where);
    p.taps = names(header, "taps", where);
    read_made_for(header, where, p);
    const auto& folds = header.at("folds");
    if (!folds.is_array() || folds.empty()) throw std::runtime_error(where + ": no folds");
    std::vector<std::vector<std::int64_t>> labels;
    for (const auto& fold : folds) {
      p.test_images.push_back(fold.at("images").get<std::vector<std::int64_t>>());
      labels.push_back(fold.at("labels").get<std::vector<std::int64_t>>());
      if (labels.back().size() != p.test_images.back().size() || labels.back().empty())
        throw std::runtime_error(where + ": fold " + std::to_string(labels.size() - 1) +
                                 " has no test images or as many labels as images");
      for (auto i : p.test_images.back())
        if (i < 0) throw std::runtime_error(where + ": a negative image number");
      for (auto l : labels.back())
        if (l < 0 || l >= p.num_classes)
          throw std::runtime_error(where + ": label " + std::to_string(l) + " outside the classes");
      // Each block holds images x classes doubles; counted without overflow (all factors are bounded above).
      doubles += labels.back().size() * static_cast<std::uint64_t>(p.num_classes);
      if (doubles > bytes.size()) throw std::runtime_error(where + " is cut short");
    }
    const std::uint64_t blocks = p.variants.size() * p.taps.size();
    if (doubles > (bytes.size() - 32 - header_size) / 8 / blocks + 1) throw std::runtime_error(where + " is cut short");
    doubles *= blocks;
    if (32 + header_size + 8 * doubles != bytes.size())
      throw std::runtime_error(where + " has " + std::to_string(bytes.size()) + " bytes where its header announces " +
                               std::to_string(32 + header_size + 8 * doubles) +
                               "; it was cut short or appended to; rerun 'kgain run'");
    p.predictions.assign(p.variants.size(), std::vector<std::vector<Predictions>>(p.taps.size()));
    std::size_t at = 24 + header_size;
    const std::size_t data_start = at;
    for (auto& per_tap : p.predictions)
      for (auto& per_fold : per_tap)
        for (const auto& fold_labels : labels) {
          Predictions x;
          x.num_classes = p.num_classes;
          x.labels = fold_labels;
          x.scores.resize(fold_labels.size() * static_cast<std::size_t>(p.num_classes));
          std::memcpy(x.scores.data(), bytes.data() + at, x.scores.size() * sizeof(double));
          at += x.scores.size() * sizeof(double);
          for (double s : x.scores)
            if (!std::isfinite(s)) throw std::runtime_error(where + " holds a score that is not a finite number");
          per_fold.push_back(std::move(x));
        }
    if (get_u64(bytes, at) != hash64(bytes.data() + data_start, at - data_start) && !skip_checksums)
      throw std::runtime_error(where + " fails its score checksum: the file was damaged; rerun 'kgain run'");
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(where + " has a damaged header (" + e.what() + "); rerun 'kgain run'");
  }
  return p;
}

RunPredictions read_predictions_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in)
    throw std::runtime_error("cannot read " + path +
                             ": was the run made by kgain 0.x before predictions were saved, or with "
                             "[analysis] save_predictions = false? Rerun 'kgain run' with the config to write it");
  const auto size = static_cast<std::size_t>(in.tellg());
  std::string bytes(size, '\0');
  in.seekg(0);
  if (!in.read(bytes.data(), static_cast<std::streamsize>(size))) throw std::runtime_error("cannot read " + path);
  return parse_predictions(bytes, path);
}

}  // namespace kgain::core
