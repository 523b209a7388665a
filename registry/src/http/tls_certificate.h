// The registry's HTTPS certificate (serve --tls-cert, --tls-key): read at start and
// again on SIGHUP, each time into a new OpenSSL server context, which the
// connections accepted from then on use. A pair that fails to load (a missing file,
// a key that is not the certificate's, a key others can read) is refused whole and
// the pair before stays in use, so that a botched replacement never takes the
// registry off the network.
//
// Protocols: TLS 1.2 and 1.3 only; on 1.2, forward-secret AEAD suites only
// (ECDHE with AES-GCM or ChaCha20-Poly1305), no renegotiation, no compression.
//
// Plain OpenSSL (no Asio): the HTTP edge wraps the context for each connection.
// Thread-safety: every member may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "pingma/common/status.h"

struct ssl_ctx_st;

namespace pingma::registry {

class TlsCertificate {
 public:
  /// What a loaded certificate says of itself, for the log and the metrics.
  struct Facts {
    std::string subject;    ///< "CN=registry.example"
    std::string not_after;  ///< "2027-12-06T08:00:00Z"
    std::int64_t not_after_unix = 0;
  };

  /// Reads the pair; an error names the file and what is wrong with it.
  static Result<std::unique_ptr<TlsCertificate>> Load(std::string cert_file, std::string key_file);
  ~TlsCertificate();

  /// Reads both files again. On failure the pair in use stays, and the status
  /// says why.
  Status Reload();

  /// The server context for a connection being accepted, with its own reference:
  /// the caller frees it (SSL_CTX_free, or by handing it to an owner that does).
  ssl_ctx_st* NewReference() const;

  Facts facts() const;

 private:
  TlsCertificate(std::string cert_file, std::string key_file)
      : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)) {}

  const std::string cert_file_, key_file_;
  mutable std::mutex mu_;
  ssl_ctx_st* context_ = nullptr;  ///< guarded by mu_; one reference held here
  Facts facts_;                    ///< guarded by mu_
};

}  // namespace pingma::registry
