// The central registry of pingma: its service and its maintenance commands.
//
// The functions here are called from the program's main; each opens the database
// itself. Serve blocks until SIGINT or SIGTERM.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "pingma/common/status.h"

namespace pingma::registry {

struct ServeOptions {
  std::string db_path;
  std::string listen = "127.0.0.1:8080";  ///< HOST:PORT; port 0 picks a free one
  std::string policy_file;                ///< empty: DOMAIN.md's defaults
  int threads = 0;                        ///< HTTP worker threads; 0: 2 per core
  std::string hotline = "12315";          ///< the complaint line on the public page
  /// Where the labels' QR codes point, as pingma-label --base (EPCIS names by it).
  std::string public_base = "https://pingma.example/";
  /// The folder of the registry's secrets (secrets.h); empty: $CREDENTIALS_DIRECTORY,
  /// else `pingma-secrets` beside a SQLite file.
  std::string secrets_dir;
  /// HOST:PORT for JT/T 808 in-vehicle terminals; empty: none taken.
  std::string jt808_listen;
  /// Terminals connected at once; one more is closed when it connects. The
  /// process's open-file limit is raised to its hard limit to hold them.
  int jt808_max_terminals = 10000;
  /// The site's own map tiles for the console's map, as a URL template with {z},
  /// {x} and {y} (https://tiles.example/{z}/{x}/{y}.png); empty: no tiles, the
  /// map is drawn from the coordinates alone.
  std::string map_tiles;
  /// The datum those tiles are drawn in: "wgs84", or "gcj02" (Chinese web maps),
  /// onto which the console shifts what it draws (display only).
  std::string map_tiles_datum = "wgs84";
  /// HOST:PORT where GET /metrics answers in Prometheus's text format; empty: none.
  std::string metrics_listen;
  /// HTTPS: the certificate (PEM, the server's first, then its chain) and its
  /// private key (PEM, not readable by others); both or neither. Read again on
  /// SIGHUP: a pair that fails to load leaves the one before in use.
  std::string tls_cert;
  std::string tls_key;
};

/// Runs the HTTP service (and, with jt808_listen, the JT/T 808 gateway, announced
/// as "jt808 on HOST:PORT" before the "listening on" line; with metrics_listen,
/// the metrics, announced as "metrics on http://HOST:PORT/metrics" before it too).
/// Prints "listening on http://HOST:PORT" (https:// with tls_cert) on stdout once
/// it accepts connections. On SIGINT/SIGTERM it stops accepting, finishes in-flight
/// requests, closes the database and returns OK; on SIGHUP it reads the TLS
/// certificate and key again.
Status Serve(const ServeOptions& options);

/// What `token add` is asked for.
struct TokenRequest {
  std::string role;
  std::string subject;
  std::string expires;      ///< the last day it works, YYYY-MM-DD; empty: no end
  std::string note;         ///< free text for people; empty: none
  std::string policy_file;  ///< whose time zone ends the last day; empty: Asia/Shanghai
};

/// A token just added: its public id, the bearer token (shown this once; only its
/// hash is kept) and, when it has a last day, the instant it stops working.
struct AddedToken {
  std::string id;
  std::string token;
  std::string expires_at;  ///< RFC 3339, or empty
};

/// Adds a bearer token. `db_path` is a SQLite file or a PostgreSQL connection
/// string, as for Verify.
Result<AddedToken> AddToken(const std::string& db_path, const TokenRequest& request);

/// The tokens as a table for people (times in the policy's zone), or as JSON
/// ({"tokens": [...]}, as GET /v1/tokens): never a secret or its hash.
Result<std::string> ListTokens(const std::string& db_path, const std::string& policy_file,
                               bool as_json);

/// Revokes the token with public id `id`: NotFound when there is none. Returns a
/// line saying what was done.
Result<std::string> RevokeToken(const std::string& db_path, const std::string& id);

/// Recomputes the event hash chain: a summary line, or Corruption naming the first
/// broken event.
Result<std::string> Verify(const std::string& db_path);

/// What a copy (migrate, backup) is doing, how much of it is done, and its total.
using CopyProgress =
    std::function<void(const std::string& what, std::int64_t done, std::int64_t total)>;

/// Copies the SQLite store at `from` (of a stopped registry) into the PostgreSQL
/// database `to`, `batch` events a transaction; resumes an interrupted copy;
/// checks the chain and every table's rows after. A summary line, or the error.
/// Defined in pingma::registry_maintenance (store/migrate.cpp), not in the server's library.
Result<std::string> Migrate(const std::string& from, const std::string& to, std::int64_t batch,
                            const CopyProgress& progress);

/// Copies the SQLite store at `db_path` into the new file `to` while registries may
/// be serving it (SQLite's online backup: one snapshot, writers not held up), checks
/// the copy (SQLite's integrity check, then Verify) and only then gives it its name;
/// nothing is left at `to` when it fails. A summary line, or the error. The secrets
/// (serve --secrets-dir) are not in the store: back them up apart.
/// Defined in pingma::registry_maintenance (store/backup.cpp), not in the server's library.
Result<std::string> Backup(const std::string& db_path, const std::string& to,
                           const CopyProgress& progress);

}  // namespace pingma::registry
