#include "plan/registry.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include <boost/dll/import.hpp>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <spdlog/spdlog.h>

#include "runtime/build_info.hpp"

namespace fs = std::filesystem;

namespace kgain::core {
namespace {

// The sink installed in every plugin library: its kgain::log messages go to spdlog (thread-safe).
void log_to_core(LogLevel level, const char* source, const char* message) {
  static const spdlog::level::level_enum levels[] = {spdlog::level::debug, spdlog::level::info, spdlog::level::warn,
                                                     spdlog::level::err};
  const int index = static_cast<int>(level);
  spdlog::log(index >= 0 && index < 4 ? levels[index] : spdlog::level::err, "{}: {}", source ? source : "plugin",
              message ? message : "");
}

}  // namespace

std::string check_manifest(const LibraryManifest& m) {
  std::vector<std::string> problems;
  if (m.abi_version != KGAIN_ABI_VERSION)
    problems.push_back("It was built for kgain plugin ABI version " + std::to_string(m.abi_version) +
                       ", but this kgain supports ABI version " + std::to_string(KGAIN_ABI_VERSION) +
                       ": rebuild the plugin against this kgain's SDK.");
  // Fields after manifest_size are read only when the layout is known to be the same.
  if (m.abi_version == KGAIN_ABI_VERSION && m.manifest_size == sizeof(LibraryManifest)) {
    if (m.torch_version == nullptr || std::strcmp(m.torch_version, TORCH_VERSION) != 0)
      problems.push_back(std::string("It was built against LibTorch ") +
                         (m.torch_version ? m.torch_version : "(unknown)") + ", but kgain runs LibTorch " +
                         TORCH_VERSION + ": rebuild it against the same LibTorch.");
    if (m.cxx11_abi != kgain::cxx11_abi)
      problems.push_back("It was built with _GLIBCXX_USE_CXX11_ABI=" + std::to_string(m.cxx11_abi) + ", kgain with " +
                         std::to_string(kgain::cxx11_abi) + ": compile it with LibTorch's TORCH_CXX_FLAGS.");
  } else if (m.abi_version == KGAIN_ABI_VERSION) {
    problems.push_back("Its manifest has " + std::to_string(m.manifest_size) + " bytes where ABI version " +
                       std::to_string(KGAIN_ABI_VERSION) + " has " + std::to_string(sizeof(LibraryManifest)) +
                       ": the SDK headers it was built with were modified.");
  }
  std::string out;
  for (const auto& p : problems) out += (out.empty() ? "" : " Also, ") + p;
  return out;
}

std::vector<std::string> Registry::default_directories() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("KGAIN_PLUGIN_PATH")) {
    std::stringstream ss(env);
    std::string dir;
    while (std::getline(ss, dir, ':'))
      if (!dir.empty()) dirs.push_back(dir);
  }
  // The build tree's plugins when this binary runs from that build tree; the installed ones
  // next to the installed binary otherwise.
  std::error_code ec;
  const fs::path self = boost::dll::program_location(ec).string();
  const fs::path build_plugins = KGAIN_BUILD_PLUGIN_DIR;
  if (!ec && fs::exists(build_plugins) &&
      fs::canonical(self.parent_path(), ec).string().rfind(fs::canonical(build_plugins.parent_path()).string(), 0) == 0)
    dirs.push_back(build_plugins.string());
  if (!ec) dirs.push_back((self.parent_path().parent_path() / KGAIN_PLUGIN_INSTALL_SUBDIR).string());
  return dirs;
}

void Registry::add_directory(const std::string& directory) {
  std::error_code ec;
  if (!fs::is_directory(directory, ec)) {
    spdlog::debug("plugin directory '{}' does not exist; skipped", directory);
    return;
  }
  std::vector<std::string> libraries;
  for (const auto& entry : fs::directory_iterator(directory, ec))
    if (entry.is_regular_file() && entry.path().extension() == ".so") libraries.push_back(entry.path().string());
  std::sort(libraries.begin(), libraries.end());
  for (const auto& path : libraries) load(path, false);
}

void Registry::add_library(const std::string& path) { load(path, true); }

void Registry::load(const std::string& path, bool explicit_request) {
  std::error_code ec;
  const std::string canonical = fs::weakly_canonical(path, ec).string();
  if (std::find(loaded_paths_.begin(), loaded_paths_.end(), canonical) != loaded_paths_.end()) return;
  loaded_paths_.push_back(canonical);

  const auto refuse = [&](const std::string& reason) {
    refused_.push_back({path, reason});
    spdlog::debug("refused plugin library {}: {}", path, reason);
    if (explicit_request) throw RegistryError("cannot use plugin library '" + path + "': " + reason);
  };

  auto library = std::make_shared<boost::dll::shared_library>();
  try {
    library->load(boost::dll::fs::path(path), boost::dll::load_mode::rtld_lazy | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    return refuse(std::string("the system cannot load it (") + e.what() + ")");
  }
  if (!library->has("kgain_library"))
    return refuse(
        "it has no 'kgain_library' entry point; it is not a kgain plugin library, or was built without "
        "KGAIN_LIBRARY(...)");

  const LibraryManifest* manifest = nullptr;
  try {
    auto entry = boost::dll::import_alias<const LibraryManifest*()>(*library, "kgain_library");
    manifest = entry();
  } catch (const std::exception& e) {
    return refuse(std::string("its entry point failed: ") + e.what());
  }
  if (manifest == nullptr) return refuse("its entry point returned no manifest");
  if (const std::string problem = check_manifest(*manifest); !problem.empty()) return refuse(problem);
  // The library's kgain::log messages join the core's log (libraries built before log.hpp lack it).
  if (library->has("kgain_set_log_sink"))
    boost::dll::import_alias<void(LogSink)>(*library, "kgain_set_log_sink")(&log_to_core);

  for (std::size_t i = 0; i < manifest->plugin_count; ++i) {
    const PluginInfo& info = manifest->plugins[i];
    auto same = std::find_if(plugins_.begin(), plugins_.end(), [&](const PluginEntry& e) {
      return e.info.kind == info.kind && std::strcmp(e.info.name, info.name) == 0;
    });
    if (same != plugins_.end()) {
      spdlog::warn("{} plugin '{}' in {} is shadowed by the one in {}, found first", to_string(info.kind), info.name,
                   path, same->library_path);
      continue;
    }
    plugins_.push_back(PluginEntry{info, path, manifest->library_name ? manifest->library_name : "", library});
  }
}

const PluginEntry& Registry::find(PluginKind kind, const std::string& name) const {
  std::vector<std::string> available;
  for (const auto& e : plugins_) {
    if (e.info.kind != kind) continue;
    if (name == e.info.name) return e;
    available.push_back(e.info.name);
  }
  std::ostringstream msg;
  msg << "no " << to_string(kind) << " plugin named '" << name << "'. ";
  if (available.empty()) {
    msg << "No " << to_string(kind) << " plugins were found at all";
  } else {
    msg << "Available " << to_string(kind) << " plugins: ";
    for (std::size_t i = 0; i < available.size(); ++i) msg << (i ? ", " : "") << available[i];
  }
  msg << ". Run 'kgain list' to see every plugin and where it comes from; add a folder with [run] plugin_paths or "
         "$KGAIN_PLUGIN_PATH.";
  if (!refused_.empty()) {
    msg << " Libraries that were refused:";
    for (const auto& r : refused_) msg << "\n  " << r.path << ": " << r.reason;
  }
  throw RegistryError(msg.str());
}

Plugin* Registry::create_raw(const PluginEntry& entry, const Options& options) const {
  try {
    Plugin* p = entry.info.create(options);
    if (p == nullptr) throw RegistryError("its factory returned nothing");
    return p;
  } catch (const OptionError&) {
    throw;
  } catch (const std::exception& e) {
    throw RegistryError(std::string(to_string(entry.info.kind)) + " plugin '" + entry.info.name + "' (" +
                        entry.library_path + ") could not be created: " + e.what());
  }
}

}  // namespace kgain::core

namespace kgain::core {
Registry load_registry(const std::vector<std::string>& extra_directories) {
  Registry registry;
  for (const auto& d : extra_directories) {
    if (!fs::is_directory(d)) spdlog::warn("plugin directory '{}' does not exist", d);
    registry.add_directory(d);
  }
  for (const auto& d : Registry::default_directories()) registry.add_directory(d);
  return registry;
}
}  // namespace kgain::core
