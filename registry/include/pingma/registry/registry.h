// The central registry of pingma: its service and its maintenance commands.
//
// The functions here are called from the program's main; each opens the database
// itself. Serve blocks until SIGINT or SIGTERM.
#pragma once

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
};

/// Runs the HTTP service. Prints "listening on http://HOST:PORT" on stdout once it
/// accepts connections. On SIGINT/SIGTERM it stops accepting, finishes in-flight
/// requests, closes the database and returns OK.
Status Serve(const ServeOptions& options);

/// Adds a bearer token for ROLE and SUBJECT; returns the token (only a hash is kept).
Result<std::string> AddToken(const std::string& db_path, const std::string& role,
                             const std::string& subject);

/// Recomputes the event hash chain: a summary line, or Corruption naming the first
/// broken event.
Result<std::string> Verify(const std::string& db_path);

}  // namespace pingma::registry
