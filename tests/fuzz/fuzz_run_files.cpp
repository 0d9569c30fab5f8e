// The files of a run directory that kgain reads back: predictions/*.kgpred (kgain compare
// --paired) and splits.csv. Either may be damaged or forged; the readers must refuse with an
// error, never crash, hang or allocate without bound. The first byte chooses the reader.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

#include "write/predictions_file.hpp"
#include "write/splits_file.hpp"

// KGAIN_FUZZ_WRITE_SEED=DIR writes DIR/predictions.seed (a small real predictions file) for
// tools/fuzz.sh; the splits.csv seed comes from a real run's file.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("KGAIN_FUZZ_WRITE_SEED");
  if (!dir) return 0;
  kgain::core::RunPredictions p;
  p.probe = "logistic";
  p.num_classes = 3;
  p.variants = {"pretrained", "random-0"};
  p.taps = {"0", "1"};
  p.test_images = {{0, 2}, {1}};
  p.config_hash = "0123456789abcdef", p.splits_hash = "fedcba9876543210", p.backbone_fingerprint = "torchscript f";
  p.image_identities = {1, 2, 0xfedcba9876543210ULL};
  p.predictions.assign(2, std::vector<std::vector<kgain::Predictions>>(2));
  for (auto& per_tap : p.predictions)
    for (auto& per_fold : per_tap)
      for (const auto& images : p.test_images) {
        kgain::Predictions x;
        x.num_classes = 3;
        for (std::size_t i = 0; i < images.size(); ++i)
          x.labels.push_back(static_cast<std::int64_t>(i)), x.scores.insert(x.scores.end(), {0.2, 0.3, 0.5});
        per_fold.push_back(x);
      }
  const std::string file = std::string(dir) + "/predictions.kgpred";
  kgain::core::write_predictions_file(file, p);
  std::ifstream in(file, std::ios::binary);
  std::ofstream(std::string(dir) + "/predictions.seed", std::ios::binary) << '\x01' << in.rdbuf();
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if (data[0] & 1) {
      // A well-formed prefix lets the fuzzer reach the header and data checks.
      (void)kgain::core::parse_predictions(bytes.size() >= 8 ? "KGPRED02" + bytes.substr(8) : bytes, "fuzz.kgpred");
    } else {
      (void)kgain::core::parse_splits_csv("path,label,group,dataset_split,fold,role\n" + bytes, "splits.csv");
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
