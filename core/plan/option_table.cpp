#include "plan/option_table.hpp"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace kgain::core {
namespace {

const PluginKind kind_order[] = {PluginKind::dataset, PluginKind::backbone, PluginKind::probe, PluginKind::metric,
                                 PluginKind::feature_metric};

// Transferability estimators (FeatureMetric plugins) are "transferability" rows, as the config says.
std::string kind_word(PluginKind kind) {
  return kind == PluginKind::feature_metric ? "transferability" : to_string(kind);
}

// A declaration's text, or "" where a plugin left it null (a plugin's data is not trusted).
std::string text_of(const char* s) { return s ? s : ""; }

// "integer, at least 1"; "string: `auto`, `newton` or `lbfgs`".
std::string type_text(const OptionSpec& spec) {
  const std::string constraint = constraint_text(spec);
  if (constraint.empty()) return to_string(spec.type);
  return std::string(to_string(spec.type)) + (spec.choices ? ": " : ", ") + constraint;
}

std::vector<const PluginEntry*> sorted_entries(const Registry& registry) {
  std::vector<const PluginEntry*> out;
  for (PluginKind kind : kind_order) {
    std::vector<const PluginEntry*> of_kind;
    for (const auto& p : registry.plugins())
      if (p.info.kind == kind) of_kind.push_back(&p);
    std::sort(of_kind.begin(), of_kind.end(),
              [](const PluginEntry* a, const PluginEntry* b) { return std::string(a->info.name) < b->info.name; });
    out.insert(out.end(), of_kind.begin(), of_kind.end());
  }
  return out;
}

}  // namespace

std::string default_text(const OptionSpec& spec) {
  const std::string literal = spec.default_value ? spec.default_value : "";
  const std::string note = spec.default_note ? spec.default_note : "";
  if (literal.empty()) return note;
  return note.empty() ? literal : literal + " (" + note + ")";
}

std::string option_table_text(const Registry& registry, const std::string& name) {
  std::string out, names;
  for (const PluginEntry* p : sorted_entries(registry)) {
    names += (names.empty() ? "" : ", ") + std::string(p->info.name);
    if (name != p->info.name) continue;
    out += std::string(out.empty() ? "" : "\n") + to_string(p->info.kind) + " " + p->info.name + " " + p->info.version +
           " (" + p->library_path + ")\n";
    if (!p->info.declares_options) {
      out += "  declares no options: its keys are known only by what it reads when created\n";
      continue;
    }
    if (p->info.option_count == 0) out += "  no options\n";
    for (std::size_t i = 0; i < p->info.option_count; ++i) {
      const OptionSpec& spec = p->info.options[i];
      char line[256];
      std::snprintf(line, sizeof line, "  %-20s %-36s default %s\n", text_of(spec.name).c_str(),
                    type_text(spec).c_str(), default_text(spec).empty() ? "(none)" : default_text(spec).c_str());
      out += line;
      out += std::string("  ") + std::string(20, ' ') + " " + text_of(spec.meaning) + "\n";
    }
  }
  if (out.empty()) throw RegistryError("no plugin is called '" + name + "'; the plugins found: " + names);
  return out;
}

std::string option_table_markdown(const Registry& registry) {
  std::string out;
  for (const PluginEntry* p : sorted_entries(registry)) {
    for (std::size_t i = 0; i < p->info.option_count; ++i) {
      const OptionSpec& spec = p->info.options[i];
      out += "| " + kind_word(p->info.kind) + " `" + p->info.name + "` | " + text_of(spec.name) + " | " +
             type_text(spec) + " | " + default_text(spec) + " | " + text_of(spec.meaning) + " |\n";
    }
  }
  return out;
}

}  // namespace kgain::core
