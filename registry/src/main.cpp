// pingma-registry: the central registry service and its maintenance commands.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "pingma/common/command_line.h"
#include "pingma/registry/registry.h"

namespace {

// A progress line on stderr: redrawn in place on a terminal, otherwise one line
// per table and one at most every 2 s for the log.
class Progress {
 public:
  void Show(const std::string& what, std::int64_t done, std::int64_t total) {
    using Clock = std::chrono::steady_clock;
    const auto now = Clock::now();
    if (what != what_) {
      if (tty_ && !what_.empty()) std::fputc('\n', stderr);
      what_ = what;
      started_ = now;
      first_done_ = done;
      shown_ = Clock::time_point{};
      shown_first_ = true;
    }
    const bool last = done >= total;
    if (done == last_done_ && !shown_first_) return;  // said already
    shown_first_ = false;
    last_done_ = done;
    if (!last && now - shown_ < (tty_ ? std::chrono::milliseconds(100) : std::chrono::seconds(2))) {
      return;
    }
    shown_ = now;
    const double seconds = std::chrono::duration<double>(now - started_).count();
    const double rate = seconds > 0 ? static_cast<double>(done - first_done_) / seconds : 0;
    const int width = 30;
    const int filled = total > 0 ? static_cast<int>(width * done / total) : width;
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(width, '.');
    std::string eta;
    if (!last && rate > 0)
      eta = fmt::format(", {:.0f} s left", static_cast<double>(total - done) / rate);
    std::fprintf(stderr, "%s%-12s [%s] %lld/%lld %3.0f%%, %.0f/s%s%s", tty_ ? "\r" : "",
                 what.c_str(), bar.c_str(), static_cast<long long>(done),
                 static_cast<long long>(total),
                 total > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0,
                 rate, eta.c_str(), tty_ ? "\x1b[K" : "\n");
    std::fflush(stderr);
  }
  void Finish() {
    if (tty_ && !what_.empty()) std::fputc('\n', stderr);
  }

 private:
  bool tty_ = ::isatty(STDERR_FILENO) != 0;
  std::string what_;
  std::chrono::steady_clock::time_point started_, shown_;
  std::int64_t first_done_ = 0;
  std::int64_t last_done_ = -1;
  bool shown_first_ = false;
};

int Fail(const pingma::Status& status) {
  std::fprintf(stderr, "pingma-registry: %s\n", status.message().c_str());
  return status.code() == pingma::StatusCode::kInvalid ? 2 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "pingma-registry: the central registry of LPG cylinders (一瓶一码 气瓶追溯登记中心)"};
  app.require_subcommand(1);

  pingma::registry::ServeOptions serve;
  auto* serve_cmd = app.add_subcommand("serve", "run the HTTP/JSON service");
  serve_cmd
      ->add_option("--db", serve.db_path,
                   "SQLite database file (created if missing), or a PostgreSQL connection "
                   "string (postgresql://...; the database must exist)")
      ->required();
  serve_cmd->add_option("--listen", serve.listen, "HOST:PORT to listen on; port 0 picks one")
      ->capture_default_str();
  serve_cmd->add_option("--policy", serve.policy_file,
                        "policy file (JSON); default: the figures of DOMAIN.md");
  serve_cmd
      ->add_option("--threads", serve.threads, "HTTP worker threads (0: one per core, at least 2)")
      ->check(CLI::Range(0, 256));

  serve_cmd
      ->add_option("--hotline", serve.hotline,
                   "the complaint telephone line the public page /c/{code} shows")
      ->capture_default_str();
  serve_cmd
      ->add_option("--public-base", serve.public_base,
                   "where the labels' QR codes point (pingma-label --base); the EPCIS "
                   "export names a cylinder without a GRAI by BASE/c/CODE")
      ->capture_default_str();
  serve_cmd->add_option("--jt808-listen", serve.jt808_listen,
                        "HOST:PORT to take JT/T 808 in-vehicle terminals on (2013 and 2019); "
                        "port 0 picks one; default: none");
  serve_cmd
      ->add_option("--jt808-max-terminals", serve.jt808_max_terminals,
                   "JT/T 808 terminals connected at once (the open-file limit is raised to hold "
                   "them)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  serve_cmd
      ->add_option("--secrets-dir", serve.secrets_dir,
                   "folder of the customer hash key and the log's signing key (made on first "
                   "start; default: $CREDENTIALS_DIRECTORY, else pingma-secrets/ beside a SQLite "
                   "file; required for PostgreSQL)")
      ->check(CLI::NonexistentPath | CLI::ExistingDirectory);
  auto* map_tiles =
      serve_cmd->add_option("--map-tiles", serve.map_tiles,
                            "URL_TEMPLATE of the site's own map tiles for the console's map, "
                            "https://tiles.example/{z}/{x}/{y}.png (its origin is then allowed in "
                            "the console's img-src); default: no tiles, the coordinates alone");
  serve_cmd
      ->add_option("--map-tiles-datum", serve.map_tiles_datum,
                   "the datum the tiles are drawn in: wgs84, or gcj02 for Chinese web maps, onto "
                   "which the console shifts what it draws (display only; WGS-84 is stored)")
      ->check(CLI::IsMember({"wgs84", "gcj02"}))
      ->needs(map_tiles)
      ->capture_default_str();
  serve_cmd->add_option("--metrics-listen", serve.metrics_listen,
                        "HOST:PORT where GET /metrics answers in Prometheus's text format (keep it "
                        "off the public network); port 0 picks one; default: none");
  CLI::Option* tls_cert =
      serve_cmd->add_option("--tls-cert", serve.tls_cert,
                            "HTTPS: the certificate file (PEM: the registry's own, then its "
                            "chain); read again on SIGHUP; default: plain HTTP");
  CLI::Option* tls_key = serve_cmd->add_option(
      "--tls-key", serve.tls_key,
      "HTTPS: the certificate's private key (PEM, not readable by others); read again on SIGHUP");
  tls_cert->needs(tls_key);
  tls_key->needs(tls_cert);
  pingma::AddConfigFile(*serve_cmd,
                        "a TOML file of these options, each flag a key with _ for - (db, listen, "
                        "secrets_dir, ...); a flag given here wins over its key; example: "
                        "/etc/pingma/registry.toml");

  std::string db;
  pingma::registry::TokenRequest token_request;
  auto* token_cmd = app.add_subcommand("token", "manage bearer tokens");
  token_cmd->require_subcommand(1);
  auto* token_add = token_cmd->add_subcommand(
      "add", "add a token: prints it alone on one line (shown this once), its id on stderr");
  token_add->add_option("--db", db, "SQLite database file or PostgreSQL connection string")
      ->required();
  token_add
      ->add_option("--role", token_request.role,
                   "admin, company, station, inspector, courier or regulator")
      ->required()
      ->check(CLI::IsMember({"admin", "company", "station", "inspector", "courier", "regulator"}));
  token_add
      ->add_option("--subject", token_request.subject,
                   "who the token speaks for: the company, station, agency, courier or "
                   "office id")
      ->required();
  token_add->add_option("--expires", token_request.expires,
                        "the last day the token works, YYYY-MM-DD: it stops at the end of "
                        "that day in the policy's time zone (Asia/Shanghai by default)");
  token_add->add_option("--note", token_request.note,
                        "what the token is for, for people (\"Li's phone\"); at most 200 bytes");
  token_add->add_option("--policy", token_request.policy_file,
                        "the policy file serve uses, for its time zone");

  std::string policy_file;
  bool as_json = false;
  auto* token_list = token_cmd->add_subcommand(
      "list",
      "list the tokens: id, role, subject, state, created, expires, last used, "
      "revoked, note (never a secret)");
  token_list->add_option("--db", db, "SQLite database file or PostgreSQL connection string")
      ->required();
  token_list->add_flag("--json", as_json, "print JSON, as GET /v1/tokens answers");
  token_list->add_option("--policy", policy_file, "the policy file serve uses, for its time zone");

  std::string token_id;
  auto* token_revoke = token_cmd->add_subcommand(
      "revoke", "revoke a token: every registry on the database refuses it within 1 s");
  token_revoke->add_option("--db", db, "SQLite database file or PostgreSQL connection string")
      ->required();
  token_revoke->add_option("--id", token_id, "the token's id, as token list shows it")->required();

  auto* verify_cmd = app.add_subcommand("verify", "recompute the event hash chain");
  verify_cmd->add_option("--db", db, "SQLite database file or PostgreSQL connection string")
      ->required();

  std::string migrate_from, migrate_to;
  std::int64_t batch = 20000;
  auto* migrate_cmd = app.add_subcommand(
      "migrate", "copy a stopped registry's SQLite store into PostgreSQL (run again to resume)");
  migrate_cmd->add_option("--from", migrate_from, "the SQLite database file")->required();
  migrate_cmd
      ->add_option("--to", migrate_to,
                   "PostgreSQL connection string, e.g. postgresql://user@host/db")
      ->required();
  migrate_cmd->add_option("--batch", batch, "events per transaction")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{10000000}));

  std::string backup_to;
  auto* backup_cmd = app.add_subcommand(
      "backup",
      "copy a SQLite store into a new file while registries serve it, and check the copy "
      "(PostgreSQL: see docs/backup.md)");
  backup_cmd->add_option("--db", db, "the SQLite database file")->required();
  backup_cmd->add_option("--to", backup_to, "the backup's file: a new one, never overwritten")
      ->required();

  if (auto done = pingma::ParseCommandLine(app, "pingma-registry", argc, argv)) return *done;

  if (*serve_cmd) {
    pingma::Status s = pingma::registry::Serve(serve);
    return s.ok() ? 0 : Fail(s);
  }
  if (*token_add) {
    auto added = pingma::registry::AddToken(db, token_request);
    if (!added.ok()) return Fail(added.status());
    std::printf("%s\n", added->token.c_str());
    std::fflush(stdout);
    std::fprintf(stderr, "pingma-registry: added token %s (%s %s)%s\n", added->id.c_str(),
                 token_request.role.c_str(), token_request.subject.c_str(),
                 added->expires_at.empty()
                     ? ", without an end"
                     : fmt::format(", working until {}", added->expires_at).c_str());
    return 0;
  }
  if (*token_list) {
    auto text = pingma::registry::ListTokens(db, policy_file, as_json);
    if (!text.ok()) return Fail(text.status());
    std::printf("%s\n", text->c_str());
    return 0;
  }
  if (*token_revoke) {
    auto said = pingma::registry::RevokeToken(db, token_id);
    if (!said.ok()) return Fail(said.status());
    std::printf("%s\n", said->c_str());
    return 0;
  }
  if (*backup_cmd) {
    Progress progress;
    auto summary = pingma::registry::Backup(
        db, backup_to, [&](const std::string& what, std::int64_t done, std::int64_t total) {
          progress.Show(what, done, total);
        });
    progress.Finish();
    if (!summary.ok()) return Fail(summary.status());
    std::printf("%s\n", summary->c_str());
    return 0;
  }
  if (*migrate_cmd) {
    Progress progress;
    auto summary =
        pingma::registry::Migrate(migrate_from, migrate_to, batch,
                                  [&](const std::string& what, std::int64_t done,
                                      std::int64_t total) { progress.Show(what, done, total); });
    progress.Finish();
    if (!summary.ok()) return Fail(summary.status());
    std::printf("%s\n", summary->c_str());
    return 0;
  }
  auto summary = pingma::registry::Verify(db);
  if (!summary.ok()) return Fail(summary.status());
  std::printf("%s\n", summary->c_str());
  return 0;
}
