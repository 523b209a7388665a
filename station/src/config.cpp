// TOML through the strict reader (pingma/common/toml_reader.h): every key checked
// against what this file knows, so that a misspelt key is an error rather than a
// silently ignored setting.
#include "config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "pingma/common/toml_reader.h"

namespace pingma::station {
namespace {

namespace fs = std::filesystem;

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(base_dir) / path).lexically_normal().string();
}

// The station config's wording of errors ("unknown key ...", "must be from 1 to 9").
TomlReader ConfigTable(const toml::table& table, std::string where) {
  return TomlReader(table, std::move(where), TomlWording::kStationConfig);
}

Status ParseScanner(const toml::table* t, const std::string& where, const std::string& base_dir,
                    SourceConfig* out) {
  if (!t) return Status::Invalid(where + " is missing (a table such as { kind = \"stdin\" })");
  TomlReader s = ConfigTable(*t, where);
  std::string kind;
  PINGMA_RETURN_IF_ERROR(s.Get("kind", true, &kind));
  Result<SourceKind> k = ParseSourceKind(kind);
  if (!k.ok()) return Status::Invalid(s.Name("kind") + ": " + k.status().message());
  out->kind = *k;
  std::string listen, connect;
  PINGMA_RETURN_IF_ERROR(s.Get("listen", out->kind == SourceKind::kTcpListen, &listen));
  PINGMA_RETURN_IF_ERROR(s.Get("connect", out->kind == SourceKind::kTcpConnect, &connect));
  out->address = out->kind == SourceKind::kTcpListen ? listen : connect;
  PINGMA_RETURN_IF_ERROR(s.Get("device", out->kind == SourceKind::kSerial, &out->device));
  std::int64_t baud = out->baud;
  PINGMA_RETURN_IF_ERROR(s.Get("baud", false, 50, 4'000'000, &baud));
  out->baud = static_cast<unsigned>(baud);
  if (s.Has("rts")) {
    PINGMA_ASSIGN_OR_RETURN(out->rts, s.Boolean("rts"));
  }
  if (s.Has("dtr")) {
    PINGMA_ASSIGN_OR_RETURN(out->dtr, s.Boolean("dtr"));
  }
  std::string dir;
  PINGMA_RETURN_IF_ERROR(s.Get("dir", out->kind == SourceKind::kImageDir, &dir));
  out->dir = Resolve(base_dir, dir);
  std::int64_t dedup = out->dedup_window.count();
  PINGMA_RETURN_IF_ERROR(s.Get("dedup_ms", false, 0, 3'600'000, &dedup));
  out->dedup_window = std::chrono::milliseconds(dedup);
  std::int64_t fd = out->fd;
  PINGMA_RETURN_IF_ERROR(s.Get("fd", false, 0, 1'000'000, &fd));
  out->fd = static_cast<int>(fd);
  return s.NoOthers();
}

Status ParseScale(const toml::table* t, const std::string& where, const std::string& base_dir,
                  PositionConfig* out) {
  if (!t)
    return Status::Invalid(where + " is missing (a table such as { transport = \"tcp\", ... })");
  TomlReader s = ConfigTable(*t, where);
  ScaleEndpoint& e = out->scale;
  std::string transport = "tcp";
  PINGMA_RETURN_IF_ERROR(s.Get("transport", false, &transport));
  if (transport == "tcp") {
    e.transport = ScaleEndpoint::Transport::kTcp;
  } else if (transport == "rtu") {
    e.transport = ScaleEndpoint::Transport::kRtu;
  } else {
    return Status::Invalid(s.Name("transport") + " must be tcp or rtu, not '" + transport + "'");
  }
  const bool tcp = e.transport == ScaleEndpoint::Transport::kTcp;
  PINGMA_RETURN_IF_ERROR(s.Get("host", tcp, &e.host));
  std::int64_t port = e.port, unit = e.unit, baud = e.baud, data_bits = e.data_bits,
               stop_bits = e.stop_bits;
  PINGMA_RETURN_IF_ERROR(s.Get("port", tcp, 1, 65535, &port));
  PINGMA_RETURN_IF_ERROR(s.Get("unit", false, 0, 247, &unit));
  PINGMA_RETURN_IF_ERROR(s.Get("device", !tcp, &e.device));
  PINGMA_RETURN_IF_ERROR(s.Get("baud", false, 50, 4'000'000, &baud));
  PINGMA_RETURN_IF_ERROR(s.Get("data_bits", false, 5, 8, &data_bits));
  PINGMA_RETURN_IF_ERROR(s.Get("stop_bits", false, 1, 2, &stop_bits));
  std::string parity = "N";
  PINGMA_RETURN_IF_ERROR(s.Get("parity", false, &parity));
  if (parity != "N" && parity != "E" && parity != "O") {
    return Status::Invalid(s.Name("parity") + " must be N, E or O");
  }
  e.port = static_cast<int>(port);
  e.unit = static_cast<int>(unit);
  e.baud = static_cast<int>(baud);
  e.data_bits = static_cast<int>(data_bits);
  e.stop_bits = static_cast<int>(stop_bits);
  e.parity = parity[0];
  std::string profile = "pingma-fill-v1";
  PINGMA_RETURN_IF_ERROR(s.Get("profile", false, &profile));
  const bool file = profile.find('/') != std::string::npos ||
                    (profile.size() > 5 && profile.substr(profile.size() - 5) == ".toml");
  Result<ScaleProfile> p = LoadProfile(file ? Resolve(base_dir, profile) : profile);
  if (!p.ok()) return Status::Invalid(s.Name("profile") + ": " + p.status().message());
  out->profile = *p;
  PINGMA_RETURN_IF_ERROR(s.Get("id", false, &out->scale_id));
  return s.NoOthers();
}

Result<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(std::string("cannot read the ") + what + " " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

Result<StationConfig> ParseStationConfig(std::string_view toml_text, const std::string& base_dir) {
  PINGMA_ASSIGN_OR_RETURN(const toml::table root,
                          ParseToml(toml_text, "station config", TomlWording::kStationConfig));
  StationConfig c;
  TomlReader top = ConfigTable(root, "");
  const toml::table* station = top.Table("station");
  if (!station) return Status::Invalid("station config: the [station] table is missing");
  TomlReader st = ConfigTable(*station, "station");
  PINGMA_RETURN_IF_ERROR(st.Get("id", true, &c.id));
  PINGMA_RETURN_IF_ERROR(st.Get("registry", true, &c.registry));
  if (c.registry.rfind("http://", 0) != 0 && c.registry.rfind("https://", 0) != 0) {
    return Status::Invalid("station.registry must be an http:// or https:// URL");
  }
  std::string token_file;
  PINGMA_RETURN_IF_ERROR(st.Get("token_file", true, &token_file));
  PINGMA_RETURN_IF_ERROR(st.Get("ca_file", false, &c.ca_file));
  c.ca_file = Resolve(base_dir, c.ca_file);
  PINGMA_RETURN_IF_ERROR(st.Get("data_dir", true, &c.data_dir));
  c.data_dir = Resolve(base_dir, c.data_dir);
  PINGMA_RETURN_IF_ERROR(st.Get("status_listen", false, &c.status_listen));
  std::int64_t deadline = c.check_deadline.count(), sync = c.sync_interval.count();
  PINGMA_RETURN_IF_ERROR(st.Get("check_deadline_ms", false, 100, 60'000, &deadline));
  PINGMA_RETURN_IF_ERROR(st.Get("sync_interval_s", false, 1, 86'400, &sync));
  c.check_deadline = std::chrono::milliseconds(deadline);
  c.sync_interval = std::chrono::seconds(sync);
  PINGMA_RETURN_IF_ERROR(st.NoOthers());

  const toml::array* positions = root.get_as<toml::array>("position");
  top.Use("position");
  PINGMA_RETURN_IF_ERROR(top.NoOthers());
  if (!positions || positions->empty()) {
    return Status::Invalid("station config: no [[position]] (a filling position) is given");
  }
  std::set<std::string> ids;
  for (std::size_t i = 0; i < positions->size(); ++i) {
    const std::string where = "position[" + std::to_string(i + 1) + "]";
    const toml::table* t = positions->get(i)->as_table();
    if (!t) return Status::Invalid(where + " must be a table");
    TomlReader p = ConfigTable(*t, where);
    PositionConfig pc;
    PINGMA_RETURN_IF_ERROR(p.Get("id", true, &pc.id));
    if (!ids.insert(pc.id).second)
      return Status::Invalid(where + ".id " + pc.id + " is given twice");
    PINGMA_RETURN_IF_ERROR(p.Get("operator", true, &pc.operator_id));
    PINGMA_RETURN_IF_ERROR(
        ParseScanner(p.Table("scanner"), where + ".scanner", base_dir, &pc.scanner));
    PINGMA_RETURN_IF_ERROR(ParseScale(p.Table("scale"), where + ".scale", base_dir, &pc));
    if (pc.scale_id.empty()) pc.scale_id = pc.id;
    PINGMA_RETURN_IF_ERROR(p.NoOthers());
    c.positions.push_back(std::move(pc));
  }

  PINGMA_ASSIGN_OR_RETURN(c.token, ReadFile(Resolve(base_dir, token_file), "token file"));
  while (!c.token.empty() &&
         (c.token.back() == '\n' || c.token.back() == '\r' || c.token.back() == ' ')) {
    c.token.pop_back();
  }
  if (c.token.empty()) return Status::Invalid("the token file " + token_file + " is empty");
  return c;
}

Result<StationConfig> LoadStationConfig(const std::string& path) {
  PINGMA_ASSIGN_OR_RETURN(std::string text, ReadFile(path, "station config"));
  const std::string base = fs::path(path).parent_path().string();
  PINGMA_ASSIGN_OR_RETURN(StationConfig config,
                          ParseStationConfig(text, base.empty() ? "." : base));
  config.text = std::move(text);
  return config;
}

namespace {

// A node as TOML text (the same value, written the same way), or "" for none.
std::string TomlText(const toml::node* node) {
  if (node == nullptr) return {};
  std::ostringstream out;
  node->visit([&out](const auto& n) { out << n; });
  return out.str();
}

}  // namespace

std::vector<std::string> ChangesTakingARestart(std::string_view before, std::string_view after) {
  auto old_root = ParseToml(before, "station config", TomlWording::kStationConfig);
  auto new_root = ParseToml(after, "station config", TomlWording::kStationConfig);
  if (!old_root.ok() || !new_root.ok()) return {"the file"};
  std::vector<std::string> changed;
  const toml::table* old_station = old_root->get_as<toml::table>("station");
  const toml::table* new_station = new_root->get_as<toml::table>("station");
  std::set<std::string> keys;  // of either file, in order
  for (const toml::table* t : {old_station, new_station}) {
    if (t == nullptr) continue;
    for (const auto& [key, value] : *t) keys.emplace(key.str());
  }
  for (const std::string& key : keys) {
    if (std::find(std::begin(kReloadableKeys), std::end(kReloadableKeys), key) !=
        std::end(kReloadableKeys)) {
      continue;
    }
    if (TomlText(old_station ? old_station->get(key) : nullptr) !=
        TomlText(new_station ? new_station->get(key) : nullptr)) {
      changed.push_back("station." + key);
    }
  }
  if (TomlText(old_root->get("position")) != TomlText(new_root->get("position"))) {
    changed.push_back("position");
  }
  return changed;
}

}  // namespace pingma::station
