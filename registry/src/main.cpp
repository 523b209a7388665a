// pingma-registry: the central registry service and its maintenance commands.
#include <cstdio>

#include <CLI/CLI.hpp>

#include "pingma/registry/registry.h"

namespace {

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
  serve_cmd->add_option("--db", serve.db_path, "SQLite database file (created if missing)")
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

  std::string db, role, subject;
  auto* token_cmd = app.add_subcommand("token", "manage bearer tokens");
  token_cmd->require_subcommand(1);
  auto* token_add = token_cmd->add_subcommand("add", "add a token and print it");
  token_add->add_option("--db", db, "SQLite database file")->required();
  token_add->add_option("--role", role, "admin, company, station, inspector, courier or regulator")
      ->required()
      ->check(CLI::IsMember({"admin", "company", "station", "inspector", "courier", "regulator"}));
  token_add
      ->add_option("--subject", subject,
                   "who the token speaks for: the company, station, agency, courier or "
                   "office id")
      ->required();

  auto* verify_cmd = app.add_subcommand("verify", "recompute the event hash chain");
  verify_cmd->add_option("--db", db, "SQLite database file")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "pingma-registry: %s (see --help)\n", e.what());
    return 2;
  }

  if (*serve_cmd) {
    pingma::Status s = pingma::registry::Serve(serve);
    return s.ok() ? 0 : Fail(s);
  }
  if (*token_add) {
    auto token = pingma::registry::AddToken(db, role, subject);
    if (!token.ok()) return Fail(token.status());
    std::printf("%s\n", token->c_str());
    return 0;
  }
  auto summary = pingma::registry::Verify(db);
  if (!summary.ok()) return Fail(summary.status());
  std::printf("%s\n", summary->c_str());
  return 0;
}
