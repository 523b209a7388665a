#include "access/secrets.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "store/pg.h"
#include "store/store.h"

namespace pingma::registry {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kCustomerKeyBytes = 32;
constexpr const char* kMetaKey = "customer_hash_key";  // stores made before
constexpr const char* kMetaFingerprint = "customer_hash_key_fingerprint";

std::string Errno() {
  return std::strerror(errno);
}

std::optional<std::string> Unhex(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += 2) {
    int v = 0;
    for (char c : text.substr(i, 2)) {
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= c - '0';
      else if (c >= 'a' && c <= 'f')
        v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        v |= c - 'A' + 10;
      else
        return std::nullopt;
    }
    out.push_back(static_cast<char>(v));
  }
  return out;
}

/// The whole of a key file, nullopt when there is none; refused when group or
/// others may read it, or when it is not a regular file.
Result<std::optional<std::string>> ReadKeyFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return Status::IoError(fmt::format("cannot read the key file {}: {}", path, Errno()));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const std::string why = Errno();
    close(fd);
    return Status::IoError(fmt::format("cannot read the key file {}: {}", path, why));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return Status::Invalid(fmt::format("the key file {} is not a regular file", path));
  }
  if ((st.st_mode & 077) != 0) {
    close(fd);
    return Status::Invalid(
        fmt::format("the key file {} has mode {:04o}: group or others may read it; make it "
                    "readable by the registry's user alone (chmod 600 {})",
                    path, st.st_mode & 07777, path));
  }
  if (st.st_size > 16 * 1024) {
    close(fd);
    return Status::Invalid(fmt::format("the key file {} is too large to be a key", path));
  }
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? Errno() : "it ended early";
      close(fd);
      return Status::IoError(fmt::format("cannot read the key file {}: {}", path, why));
    }
    got += static_cast<std::size_t>(n);
  }
  close(fd);
  return std::optional<std::string>(std::move(text));
}

Status SyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IoError(fmt::format("cannot open the folder {}: {}", dir, Errno()));
  const int rc = fsync(fd);
  const std::string why = Errno();
  close(fd);
  if (rc != 0) return Status::IoError(fmt::format("cannot sync the folder {}: {}", dir, why));
  return Status::Ok();
}

Status EnsureDir(const std::string& dir) {
  struct stat st {};
  if (stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return Status::Invalid(fmt::format("the secrets folder {} is not a folder", dir));
    }
    return Status::Ok();
  }
  if (errno != ENOENT) {
    return Status::IoError(fmt::format("cannot reach the secrets folder {}: {}", dir, Errno()));
  }
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::IoError(fmt::format("cannot make the secrets folder {}: {}", dir, Errno()));
  }
  const std::string parent = fs::path(dir).parent_path().string();
  return SyncDir(parent.empty() ? "." : parent);
}

/// Writes `text` as `dir`/`name`, mode 0600, durably: a temporary file written and
/// synced, renamed over the name, and the folder synced.
Status WriteKeyFile(const std::string& dir, const char* name, std::string_view text) {
  PINGMA_RETURN_IF_ERROR(EnsureDir(dir));
  const std::string path = (fs::path(dir) / name).string();
  const std::string tmp = path + ".new";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::IoError(fmt::format("cannot write the key file {}: {}", tmp, Errno()));
  std::size_t put = 0;
  while (put < text.size()) {
    const ssize_t n = write(fd, text.data() + put, text.size() - put);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = Errno();
      close(fd);
      unlink(tmp.c_str());
      return Status::IoError(fmt::format("cannot write the key file {}: {}", tmp, why));
    }
    put += static_cast<std::size_t>(n);
  }
  if (fchmod(fd, 0600) != 0 || fsync(fd) != 0) {
    const std::string why = Errno();
    close(fd);
    unlink(tmp.c_str());
    return Status::IoError(fmt::format("cannot sync the key file {}: {}", tmp, why));
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = Errno();
    unlink(tmp.c_str());
    return Status::IoError(fmt::format("cannot put the key file {} in place: {}", path, why));
  }
  return SyncDir(dir);
}

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Bio = std::unique_ptr<BIO, BioFree>;

Result<std::string> NewSigningKeyPem() {
  EVP_PKEY* raw = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
  const bool made =
      ctx != nullptr && EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_keygen(ctx, &raw) == 1;
  EVP_PKEY_CTX_free(ctx);
  Pkey key(raw);
  if (!made) return Status::Internal("cannot make an Ed25519 key (OpenSSL)");
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Status::Internal("cannot write the Ed25519 key as PEM (OpenSSL)");
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

/// The raw public key of a PEM Ed25519 private key; Invalid for anything else.
Result<std::string> SigningPublicKey(const std::string& pem, const std::string& path) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Pkey key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key || EVP_PKEY_id(key.get()) != EVP_PKEY_ED25519) {
    return Status::Invalid(
        fmt::format("the key file {} is not an Ed25519 private key in PEM", path));
  }
  unsigned char pub[32];
  std::size_t len = sizeof pub;
  if (EVP_PKEY_get_raw_public_key(key.get(), pub, &len) != 1 || len != sizeof pub) {
    return Status::Internal(fmt::format("cannot read the public half of {}", path));
  }
  return std::string(reinterpret_cast<const char*>(pub), len);
}

std::string ReplyMessage(const Reply& reply) {
  auto it = reply.body.find("error");
  if (it == reply.body.end() || !it->is_object()) return "no message";
  return it->value("message", std::string("no message"));
}

Result<std::optional<std::string>> MetaValue(Conn& conn, const char* key) {
  PINGMA_ASSIGN_OR_RETURN(auto st, conn.Prepare("SELECT value FROM meta WHERE key = $1"));
  st->Bind(1, std::string(key));
  PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(std::string(st->Blob(0)));
}

}  // namespace

Result<SecretsLocation> SecretsDir(const std::string& explicit_dir, const std::string& db_path) {
  if (!explicit_dir.empty()) return SecretsLocation{explicit_dir, false};
  if (const char* creds = std::getenv("CREDENTIALS_DIRECTORY"); creds != nullptr && *creds) {
    return SecretsLocation{creds, true};
  }
  if (pg::IsConnectionString(db_path)) {
    return Status::Invalid(
        "a PostgreSQL store needs --secrets-dir (the folder of the customer hash key and the "
        "log's signing key, kept apart from the database and backed up apart from it)");
  }
  const fs::path parent = fs::path(db_path).parent_path();
  return SecretsLocation{
      (parent.empty() ? fs::path("pingma-secrets") : parent / "pingma-secrets").string(), false};
}

std::string KeyFingerprint(const std::string& key) {
  static constexpr std::string_view kLabel = "pingma customer hash key fingerprint";
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(kLabel.data()), kLabel.size(), out, &len);
  return HexOf(std::string_view(reinterpret_cast<const char*>(out), 8));
}

Status WriteCustomerHashKey(const std::string& dir, const std::string& key) {
  return WriteKeyFile(dir, kCustomerHashKeyFile, HexOf(key) + "\n");
}

Result<Secrets> LoadSecrets(const std::string& dir) {
  Secrets secrets;
  secrets.dir = dir;
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return secrets;  // made when a key is first written
    return Status::IoError(fmt::format("cannot reach the secrets folder {}: {}", dir, Errno()));
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::Invalid(fmt::format("the secrets folder {} is not a folder", dir));
  }

  const std::string customer_path = (fs::path(dir) / kCustomerHashKeyFile).string();
  PINGMA_ASSIGN_OR_RETURN(auto customer, ReadKeyFile(customer_path));
  if (customer) {
    std::string_view text = *customer;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    auto key = Unhex(text);
    if (!key || key->size() != kCustomerKeyBytes) {
      return Status::Invalid(fmt::format("the key file {} must hold {} bytes as {} hex digits",
                                         customer_path, kCustomerKeyBytes, 2 * kCustomerKeyBytes));
    }
    secrets.customer_hash_key = std::move(*key);
  }

  const std::string signing_path = (fs::path(dir) / kLogSigningKeyFile).string();
  PINGMA_ASSIGN_OR_RETURN(auto signing, ReadKeyFile(signing_path));
  if (signing) {
    PINGMA_ASSIGN_OR_RETURN(auto pub, SigningPublicKey(*signing, signing_path));
    secrets.log_signing_key = std::move(*signing);
    secrets.log_public_key = std::move(pub);
  }
  return secrets;
}

Status EnsureSigningKey(Secrets& secrets) {
  if (!secrets.log_signing_key.empty()) return Status::Ok();
  PINGMA_ASSIGN_OR_RETURN(auto pem, NewSigningKeyPem());
  const std::string path = (fs::path(secrets.dir) / kLogSigningKeyFile).string();
  PINGMA_ASSIGN_OR_RETURN(auto pub, SigningPublicKey(pem, path));
  PINGMA_RETURN_IF_ERROR(WriteKeyFile(secrets.dir, kLogSigningKeyFile, pem));
  secrets.log_signing_key = std::move(pem);
  secrets.log_public_key = std::move(pub);
  return Status::Ok();
}

Status AdoptCustomerHashKey(Store& store, Secrets& secrets, KeyNotice* notice) {
  const std::string key_path = (fs::path(secrets.dir) / kCustomerHashKeyFile).string();
  // What the store holds, read and settled in one write transaction, so that two
  // registries starting at once on one database agree.
  std::optional<std::string> in_store, fingerprint;
  Reply read = store.Run([&](WriteTx& tx) -> Reply {
    auto k = MetaValue(tx.conn(), kMetaKey);
    if (!k.ok()) return ErrorReply(k.status());
    auto f = MetaValue(tx.conn(), kMetaFingerprint);
    if (!f.ok()) return ErrorReply(f.status());
    in_store = *k;
    fingerprint = *f;
    return Reply{};
  });
  if (read.failed()) return Status::IoError("cannot read the store's key: " + ReplyMessage(read));

  std::string& key = secrets.customer_hash_key;
  if (in_store) {
    if (!key.empty() && key != *in_store) {
      return Status::Invalid(fmt::format(
          "the store keeps its customer hash key (fingerprint {}) and {} holds another "
          "(fingerprint {}): move that file away to have the store's key moved into the folder",
          KeyFingerprint(*in_store), key_path, KeyFingerprint(key)));
    }
    if (key.empty()) {
      // Into the folder first: were the process to stop between the two steps, the
      // next start finds the same key in both places and finishes the move.
      PINGMA_RETURN_IF_ERROR(WriteCustomerHashKey(secrets.dir, *in_store));
      key = *in_store;
    }
    if (notice) {
      notice->moved = fmt::format(
          "the customer hash key (fingerprint {}) was moved from the store to {}; back the "
          "folder up apart from the database, and treat backups of the database made before "
          "now as secret: they hold the key",
          KeyFingerprint(key), key_path);
    }
  } else if (fingerprint) {
    if (key.empty()) {
      return Status::Invalid(fmt::format(
          "{} is missing: this store's customers were hashed with the key of fingerprint {}; "
          "restore the secrets folder from its backup (a new key would find none of them)",
          key_path, *fingerprint));
    }
    if (KeyFingerprint(key) != *fingerprint) {
      return Status::Invalid(fmt::format(
          "{} holds the key of fingerprint {}, but this store's customers were hashed with "
          "the key of fingerprint {}: restore the right secrets folder",
          key_path, KeyFingerprint(key), *fingerprint));
    }
    return Status::Ok();
  } else if (key.empty()) {
    unsigned char bytes[kCustomerKeyBytes];
    if (RAND_bytes(bytes, sizeof bytes) != 1) return Status::Internal("no random bytes (OpenSSL)");
    key.assign(reinterpret_cast<const char*>(bytes), sizeof bytes);
    PINGMA_RETURN_IF_ERROR(WriteCustomerHashKey(secrets.dir, key));
    if (notice) notice->made = fmt::format("made a customer hash key in {}", key_path);
  }

  Reply settled = store.Run([&](WriteTx& tx) -> Reply {
    Conn& conn = tx.conn();
    if (in_store) {
      auto deleted =
          SecureDeleteRows(conn, "DELETE FROM meta WHERE key = $1",
                           [](sql::Statement& st) { st.Bind(1, std::string(kMetaKey)); });
      if (!deleted.ok()) return ErrorReply(deleted.status());
    }
    auto put = conn.Prepare(
        "INSERT INTO meta(key, value) VALUES($1, $2) ON CONFLICT(key) DO UPDATE SET value = "
        "excluded.value");
    if (!put.ok()) return ErrorReply(put.status());
    const std::string fp = KeyFingerprint(key);
    (*put)->Bind(1, std::string(kMetaFingerprint)).BindBlob(2, fp.data(), fp.size());
    if (Status s = (*put)->Run(); !s.ok()) return ErrorReply(s);
    return Reply{};
  });
  if (settled.failed()) {
    return Status::IoError("cannot record the key's fingerprint: " + ReplyMessage(settled));
  }
  return Status::Ok();
}

Result<std::string> SignWithLogKey(std::string_view signing_key_pem, std::string_view message) {
  Bio bio(BIO_new_mem_buf(signing_key_pem.data(), static_cast<int>(signing_key_pem.size())));
  Pkey key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key || EVP_PKEY_id(key.get()) != EVP_PKEY_ED25519) {
    return Status::Invalid("the log's signing key is not an Ed25519 private key in PEM");
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned char signature[64];
  size_t length = sizeof signature;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), signature, &length,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return Status::Internal("cannot sign with the log's key (OpenSSL)");
  }
  return std::string(reinterpret_cast<const char*>(signature), length);
}

bool VerifyLogSignature(std::string_view public_key, std::string_view message,
                        std::string_view signature) {
  Pkey key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                       reinterpret_cast<const unsigned char*>(public_key.data()),
                                       public_key.size()));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  return key && ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1 &&
         EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

}  // namespace pingma::registry
