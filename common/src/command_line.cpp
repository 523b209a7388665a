#include "pingma/common/command_line.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "pingma/common/toml_reader.h"
#include "pingma/common/version.h"

namespace pingma {
namespace {

constexpr const char* kConfigGroup = "Config file";

// One TOML value as the strings an option takes; an error names the key.
Result<std::vector<std::string>> Inputs(const std::string& key, const toml::node& value) {
  if (const auto* text = value.as_string()) return std::vector<std::string>{text->get()};
  if (const auto* integer = value.as_integer()) {
    return std::vector<std::string>{std::to_string(integer->get())};
  }
  if (const auto* real = value.as_floating_point()) {
    return std::vector<std::string>{fmt::format("{}", real->get())};
  }
  if (const auto* flag = value.as_boolean()) {
    return std::vector<std::string>{flag->get() ? "true" : "false"};
  }
  if (const auto* array = value.as_array()) {
    std::vector<std::string> all;
    for (const toml::node& element : *array) {
      if (element.is_array() || element.is_table()) break;
      auto one = Inputs(key, element);
      if (!one.ok()) return one.status();
      all.insert(all.end(), one->begin(), one->end());
    }
    if (all.size() == array->size()) return all;
  }
  return Status::Invalid(
      fmt::format("{} must be a string, a number, true or false, or a list of them", key));
}

// The command that argv names (the app, or the subcommands its first words name),
// and the index of argv's first word after their names.
std::pair<CLI::App*, int> Named(CLI::App& app, int argc, char** argv) {
  CLI::App* command = &app;
  int at = 1;
  while (at < argc) {
    CLI::App* sub = nullptr;
    for (CLI::App* candidate : command->get_subcommands({})) {
      if (candidate->check_name(argv[at])) sub = candidate;
    }
    if (sub == nullptr) break;
    command = sub;
    ++at;
  }
  return {command, at};
}

// Whether argv[from..] gives the option `flag` ("--db X" or "--db=X").
bool Given(const std::string& flag, int from, int argc, char** argv) {
  for (int i = from; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == flag || word.rfind(flag + "=", 0) == 0) return true;
  }
  return false;
}

// argv with the options of `command`'s --config file, as "--key=value" words put
// before the command line's own (which are left out of them: the command line wins).
Result<std::vector<std::string>> WithConfigFile(CLI::App& app, int argc, char** argv) {
  std::vector<std::string> words(argv, argv + argc);
  auto [command, at] = Named(app, argc, argv);
  const CLI::Option* config = command->get_option_no_throw("--config");
  if (config == nullptr || config->get_group() != kConfigGroup) return words;
  std::string file;
  for (int i = at; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--config" && i + 1 < argc) file = argv[i + 1];
    if (word.rfind("--config=", 0) == 0) file = word.substr(9);
  }
  if (file.empty()) return words;
  std::ifstream in(file, std::ios::binary);
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (!in.good() && !in.eof()) {
    return Status::NotFound(fmt::format("--config {}: cannot read it: {}", file,
                                        std::generic_category().message(errno)));
  }
  auto table = ParseToml(text, file);
  if (!table.ok()) return table.status();
  std::vector<std::string> known, unknown, added;
  for (const CLI::Option* option : command->get_options()) {
    if (option->get_lnames().empty() || option->get_group() == kConfigGroup) continue;
    const std::string name = option->get_lnames().front();
    if (name != "help" && name != "help-all" && name != "version") known.push_back(name);
  }
  for (const auto& [key, value] : *table) {
    std::string name(key.str());
    std::replace(name.begin(), name.end(), '_', '-');
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      unknown.emplace_back(key.str());
      continue;
    }
    auto inputs = Inputs(std::string(key.str()), value);
    if (!inputs.ok()) {
      return Status::Invalid(fmt::format("--config {}: {}", file, inputs.status().message()));
    }
    if (Given("--" + name, at, argc, argv)) continue;
    for (const std::string& input : *inputs) added.push_back("--" + name + "=" + input);
  }
  if (!unknown.empty()) {
    for (std::string& name : known) std::replace(name.begin(), name.end(), '-', '_');
    return Status::Invalid(fmt::format("--config {}: {} {} no key of {} (its keys: {})", file,
                                       fmt::join(unknown, ", "), unknown.size() == 1 ? "is" : "are",
                                       command->get_name(), fmt::join(known, ", ")));
  }
  words.insert(words.begin() + at, added.begin(), added.end());
  return words;
}

}  // namespace

void AddConfigFile(CLI::App& command, const std::string& help) {
  // Read by WithConfigFile before CLI11 parses (CLI11 reads a subcommand's own
  // config file only on the top-level app); here it is for --help and to be taken.
  command.add_option("--config", help)->group(kConfigGroup)->type_name("FILE");
}

std::optional<int> ParseCommandLine(CLI::App& app, const std::string& program, int argc,
                                    char** argv) {
  app.set_version_flag("--version", VersionLine(program),
                       "print the version and commit, then exit");
  auto words = WithConfigFile(app, argc, argv);
  if (!words.ok()) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), words.status().message().c_str());
    return 2;
  }
  try {
    // CLI11 takes the words after the program's name, last first.
    std::vector<std::string> reversed(words->rbegin(), words->rend() - 1);
    app.parse(reversed);
  } catch (const CLI::Success& e) {  // --help, --help-all, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: %s (see --help)\n", program.c_str(), e.what());
    return 2;
  }
  return std::nullopt;
}

}  // namespace pingma
