// The one number that says whether a plugin library and the kgain core can talk.
//
// A plugin library and the core share C++ types (std::string, std::vector, at::Tensor and the
// interfaces in this folder), so they must agree on every byte of them. The loader refuses a
// library whose KGAIN_ABI_VERSION differs from its own, or that was built against another
// LibTorch version or another C++ standard-library ABI, before it creates anything.
//
// Bump KGAIN_ABI_VERSION when, and only when, a plugin built against the old headers could
// misbehave with the new core:
//   - a virtual function is added to, removed from or reordered in an interface;
//   - a member is added to, removed from or reordered in a struct that crosses the boundary
//     (Sample, TapInfo, Variant, PluginInfo, LibraryManifest, Options);
//   - the meaning of an existing function or field changes.
// Adding a new header, a new free inline helper or a new plugin kind does not need a bump.
//
// The first two fields of LibraryManifest (abi_version, manifest_size) never move, so that any
// kgain core can read the version of any kgain library, old or new, and say what is wrong.
#pragma once

#include <cstdint>

#define KGAIN_ABI_VERSION \
  6u  // 2: batch-norm calibration, random-only backbones, Dataset::read_pixels;
      // 3: Dataset::content_identity, data_report, warnings;
      // 4: token poolings (Pooling::cls, mean, cls_mean), TapInfo::form;
      // 5: Probe::fits_folds_together, Probe::fit_folds (FoldRows);
      // 6: declared options (PluginInfo::options, Options::declare)

namespace kgain {
inline constexpr std::uint32_t abi_version = KGAIN_ABI_VERSION;

// The C++ standard-library ABI this translation unit is compiled with (libstdc++'s dual ABI:
// std::string and std::list differ between the two). Both sides must agree.
#if defined(_GLIBCXX_USE_CXX11_ABI)
inline constexpr int cxx11_abi = _GLIBCXX_USE_CXX11_ABI;
#else
inline constexpr int cxx11_abi = -1;
#endif
}  // namespace kgain
