#include "http/tls_certificate.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace pingma::registry {
namespace {

// Mozilla's "intermediate" TLS 1.2 suites without finite-field DH: forward secrecy
// and authenticated encryption only. TLS 1.3's own suites all qualify.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// OpenSSL's queued errors as one line (the last is the most specific), emptied.
std::string OpenSslErrors() {
  std::string text;
  while (unsigned long e = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(e, buffer, sizeof buffer);
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text.empty() ? "no reason given" : text;
}

// A file that is not there or cannot be read is said plainly, before OpenSSL's
// own words for it.
Status Readable(const std::string& flag, const std::string& path, struct stat* st) {
  if (path.empty()) return Status::Invalid(flag + " names no file");
  if (stat(path.c_str(), st) != 0) {
    return Status::Invalid(fmt::format("cannot read {} {}: {}", flag, path, std::strerror(errno)));
  }
  if (!S_ISREG(st->st_mode)) {
    return Status::Invalid(fmt::format("{} {} is not a file", flag, path));
  }
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return Status::Invalid(fmt::format("cannot read {} {}: {}", flag, path, std::strerror(errno)));
  }
  std::fclose(f);
  return Status::Ok();
}

struct ContextFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using ContextPtr = std::unique_ptr<SSL_CTX, ContextFree>;

TlsCertificate::Facts FactsOf(X509* cert) {
  TlsCertificate::Facts facts;
  if (cert == nullptr) return facts;
  char name[512];
  X509_NAME_oneline(X509_get_subject_name(cert), name, sizeof name);
  facts.subject = name;
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1) {
    facts.not_after_unix = static_cast<std::int64_t>(timegm(&tm));
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    facts.not_after = text;
  }
  return facts;
}

// A new server context holding the pair, or why the pair cannot be used.
Result<ContextPtr> NewContext(const std::string& cert_file, const std::string& key_file,
                              TlsCertificate::Facts* facts) {
  struct stat cert_stat = {};
  struct stat key_stat = {};
  PINGMA_RETURN_IF_ERROR(Readable("--tls-cert", cert_file, &cert_stat));
  PINGMA_RETURN_IF_ERROR(Readable("--tls-key", key_file, &key_stat));
  if ((key_stat.st_mode & S_IROTH) != 0) {
    return Status::Invalid(fmt::format(
        "--tls-key {} can be read by every user of this machine (mode {:04o}); chmod o-r it",
        key_file, key_stat.st_mode & 07777));
  }
  ERR_clear_error();
  ContextPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return Status::Internal("cannot make a TLS context: " + OpenSslErrors());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(ctx.get(), kTls12Ciphers) != 1) {
    return Status::Internal("cannot set the TLS 1.2 cipher suites: " + OpenSslErrors());
  }
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1) {
    return Status::Invalid(fmt::format("--tls-cert {} holds no usable PEM certificate ({})",
                                       cert_file, OpenSslErrors()));
  }
  auto not_its_key = [&] {
    return Status::Invalid(fmt::format("--tls-key {} is not the key of the certificate in {} ({})",
                                       key_file, cert_file, OpenSslErrors()));
  };
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) return not_its_key();
    return Status::Invalid(fmt::format(
        "--tls-key {} holds no usable PEM private key (an encrypted key is not read: the "
        "registry starts unattended) ({})",
        key_file, OpenSslErrors()));
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) return not_its_key();
  *facts = FactsOf(SSL_CTX_get0_certificate(ctx.get()));
  return ctx;
}

}  // namespace

Result<std::unique_ptr<TlsCertificate>> TlsCertificate::Load(std::string cert_file,
                                                             std::string key_file) {
  std::unique_ptr<TlsCertificate> cert(
      new TlsCertificate(std::move(cert_file), std::move(key_file)));
  PINGMA_RETURN_IF_ERROR(cert->Reload());
  return cert;
}

TlsCertificate::~TlsCertificate() {
  SSL_CTX_free(context_);
}

Status TlsCertificate::Reload() {
  Facts facts;
  auto ctx = NewContext(cert_file_, key_file_, &facts);
  if (!ctx.ok()) return ctx.status();
  SSL_CTX* old = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    old = context_;
    context_ = ctx->release();
    facts_ = std::move(facts);
  }
  // Connections made with the old context hold references of their own.
  SSL_CTX_free(old);
  return Status::Ok();
}

ssl_ctx_st* TlsCertificate::NewReference() const {
  std::lock_guard<std::mutex> lock(mu_);
  SSL_CTX_up_ref(context_);
  return context_;
}

TlsCertificate::Facts TlsCertificate::facts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return facts_;
}

}  // namespace pingma::registry
