// The contract between a plugin library and the kgain core: one entry point per library.
//
// A plugin library is a shared object that exports one symbol, `kgain_library`, through
// Boost.DLL's alias mechanism. It returns a LibraryManifest: the ABI version and toolchain the
// library was built with, and a table of the plugins it provides (kind, name, version and a
// factory). The core reads and checks the manifest before it creates anything. Write it with
// the KGAIN_LIBRARY macro:
//
//   #include <kgain/metric.hpp>
//   #include <kgain/plugin.hpp>
//   class Accuracy : public kgain::Metric { ... };
//   KGAIN_LIBRARY("my-metrics",
//                 kgain::make_plugin<Accuracy>("accuracy", "1.0.0", "share of correct predictions"))
//
// Each factory receives the plugin's options and throws (any std::exception) when they are
// unusable; the core reports the exception with the plugin's name and library path. A plugin
// class that declares its options (a static `declared_options` array of kgain::OptionSpec,
// option_spec.hpp) has them in the manifest and checked before its constructor runs; every
// bundled plugin does.
// Threads: the core loads libraries, reads manifests and calls factories from one thread at a
// time; what each interface's methods may expect is in its header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>

#include <boost/config.hpp>  // BOOST_SYMBOL_EXPORT, used by BOOST_DLL_ALIAS
#include <boost/dll/alias.hpp>
#include <torch/version.h>  // TORCH_VERSION: the LibTorch the library was built against (macros only)

#include "kgain/abi.hpp"
#include "kgain/log.hpp"
#include "kgain/options.hpp"

namespace kgain {

enum class PluginKind : std::uint32_t { backbone = 1, dataset = 2, probe = 3, metric = 4, feature_metric = 5 };

inline const char* to_string(PluginKind kind) {
  switch (kind) {
    case PluginKind::backbone: return "backbone";
    case PluginKind::dataset: return "dataset";
    case PluginKind::probe: return "probe";
    case PluginKind::metric: return "metric";
    case PluginKind::feature_metric: return "feature_metric";
  }
  return "unknown";
}

// Base of the plugin interfaces (Backbone, Dataset, Probe, Metric, FeatureMetric).
class BOOST_SYMBOL_VISIBLE Plugin {
 public:
  virtual ~Plugin() = default;
};

struct PluginInfo {
  PluginKind kind;
  const char* name;     // what a config writes after `plugin =`; unique per kind
  const char* version;  // the plugin's own version (semantic versioning), not the ABI's
  const char* summary;  // one line for `kgain list`
  // Creates the plugin. The returned object is of the interface that `kind` names.
  Plugin* (*create)(const Options& options);
  // The options the plugin declares (`kgain list --options NAME`); declares_options is false for
  // a plugin class without `declared_options`, whose keys are known only by what it reads.
  const OptionSpec* options;
  std::size_t option_count;
  bool declares_options;
};

struct LibraryManifest {
  std::uint32_t abi_version;    // never moves: KGAIN_ABI_VERSION at build time
  std::uint32_t manifest_size;  // never moves: sizeof(LibraryManifest) at build time
  const char* library_name;
  const char* torch_version;  // TORCH_VERSION at build time, e.g. "1.13.1"
  int cxx11_abi;              // _GLIBCXX_USE_CXX11_ABI at build time
  const PluginInfo* plugins;
  std::size_t plugin_count;
};

class Backbone;
class Dataset;
class Probe;
class Metric;
class FeatureMetric;

namespace detail {
// The interface a plugin class implements. Evaluated when a plugin uses make_plugin, where the
// interface is a complete type.
template <class T>
using interface_of = std::conditional_t<
    std::is_base_of_v<Backbone, T>, Backbone,
    std::conditional_t<std::is_base_of_v<Dataset, T>, Dataset,
                       std::conditional_t<std::is_base_of_v<Probe, T>, Probe,
                                          std::conditional_t<std::is_base_of_v<Metric, T>, Metric, FeatureMetric>>>>;

template <class Interface>
constexpr PluginKind kind_of() {
  if constexpr (std::is_same_v<Interface, Backbone>)
    return PluginKind::backbone;
  else if constexpr (std::is_same_v<Interface, Dataset>)
    return PluginKind::dataset;
  else if constexpr (std::is_same_v<Interface, Probe>)
    return PluginKind::probe;
  else if constexpr (std::is_same_v<Interface, Metric>)
    return PluginKind::metric;
  else
    return PluginKind::feature_metric;
}
template <class T, class = void>
struct declares_options : std::false_type {};
template <class T>
struct declares_options<T, std::void_t<decltype(T::declared_options)>> : std::true_type {};

// The factory checks the options against the declaration, then converts through the interface
// type, so that the core can static_cast the Plugin* back to that interface.
template <class Interface, class T>
Plugin* create(const Options& options) {
  if constexpr (declares_options<T>::value) options.declare(T::declared_options.data(), T::declared_options.size());
  Interface* object = new T(options);
  return object;
}
}  // namespace detail

// Describes plugin class T, which must be constructible from `const Options&`; its options come
// from T::declared_options (a std::array of OptionSpec) when it has one.
template <class T>
constexpr PluginInfo make_plugin(const char* name, const char* version, const char* summary) {
  using Interface = detail::interface_of<T>;
  static_assert(std::is_base_of_v<Interface, T>,
                "a plugin derives from Backbone, Dataset, Probe, Metric or FeatureMetric");
  if constexpr (detail::declares_options<T>::value)
    return PluginInfo{
        detail::kind_of<Interface>(), name, version, summary, &detail::create<Interface, T>, T::declared_options.data(),
        T::declared_options.size(),   true};
  else
    return PluginInfo{detail::kind_of<Interface>(),  name,    version, summary,
                      &detail::create<Interface, T>, nullptr, 0,       false};
}

}  // namespace kgain

// Defines and exports the library's entry point, and `kgain_set_log_sink`, through which the
// core routes the library's kgain::log messages (log.hpp). The arguments after the library name
// are PluginInfo values (use kgain::make_plugin). Use once per library.
#define KGAIN_LIBRARY(library_name_literal, ...)                                                         \
  namespace {                                                                                            \
  const ::kgain::PluginInfo kgain_plugins_[] = {__VA_ARGS__};                                            \
  const ::kgain::LibraryManifest kgain_manifest_ = {KGAIN_ABI_VERSION,                                   \
                                                    sizeof(::kgain::LibraryManifest),                    \
                                                    library_name_literal,                                \
                                                    TORCH_VERSION,                                       \
                                                    ::kgain::cxx11_abi,                                  \
                                                    kgain_plugins_,                                      \
                                                    sizeof(kgain_plugins_) / sizeof(kgain_plugins_[0])}; \
  }                                                                                                      \
  namespace kgain_entry {                                                                                \
  const ::kgain::LibraryManifest* library_manifest() { return &kgain_manifest_; }                        \
  }                                                                                                      \
  BOOST_DLL_ALIAS(kgain_entry::library_manifest, kgain_library)                                          \
  namespace kgain_entry {                                                                                \
  void set_log_sink(::kgain::LogSink sink) { ::kgain::detail::library_log_sink() = sink; }               \
  }                                                                                                      \
  BOOST_DLL_ALIAS(kgain_entry::set_log_sink, kgain_set_log_sink)
