// The registry's secrets, kept outside the store: the key of the customers' phone
// and ID hashes, and the log's signing key. A copy of the database alone must not
// let anyone confirm or recover a customer's phone or ID number, so the key that
// makes their hashes lives in a folder of its own (API.md "Registry command line"),
// which the operator backs up apart from the database.
//
// The folder: --secrets-dir, else $CREDENTIALS_DIRECTORY (systemd's
// LoadCredential=), else `pingma-secrets/` beside a SQLite file; a PostgreSQL store
// must name one. Missing keys are made on first start, files of mode 0600 in a
// folder of mode 0700; a key file that group or others may read is refused.
#pragma once

#include <string>
#include <string_view>

#include "pingma/common/status.h"

namespace pingma::registry {

class Store;

struct Secrets {
  std::string dir;                ///< where they were read from
  std::string customer_hash_key;  ///< 32 bytes: HMAC-SHA-256 key of phone and ID hashes
  std::string log_signing_key;    ///< Ed25519 private key, PKCS#8 PEM
  std::string log_public_key;     ///< its 32 raw public bytes
};

/// The file names inside the folder.
inline constexpr const char* kCustomerHashKeyFile = "customer-hash.key";
inline constexpr const char* kLogSigningKeyFile = "log-signing.pem";

/// The folder for a store at `db_path`: `explicit_dir` when given, else
/// $CREDENTIALS_DIRECTORY when set, else `pingma-secrets` beside a SQLite file.
/// Invalid for a PostgreSQL store without either.
struct SecretsLocation {
  std::string dir;
  /// systemd's $CREDENTIALS_DIRECTORY: read-only, so every key must be there.
  bool from_credentials = false;
};
Result<SecretsLocation> SecretsDir(const std::string& explicit_dir, const std::string& db_path);

/// Reads the keys in `dir`, making nothing: a folder or key that is not there is
/// left empty (AdoptCustomerHashKey and EnsureSigningKey make what is missing, once
/// the store has said what it needs). Refuses a key file that group or others may
/// read, or one that is not what it should be.
Result<Secrets> LoadSecrets(const std::string& dir);

/// Makes the log's signing key when the folder has none (the folder too).
Status EnsureSigningKey(Secrets& secrets);

/// Writes `key` as the folder's customer hash key (mode 0600, written to a
/// temporary file, synced and renamed into place, the folder synced).
Status WriteCustomerHashKey(const std::string& dir, const std::string& key);

/// A short public name of a customer hash key: 16 hex digits of an HMAC under the
/// key, which tells two keys apart and says nothing of either (nor of any phone).
std::string KeyFingerprint(const std::string& key);

/// Settles which key the store's customers are hashed with, at start, before any
/// request:
/// - a store made before the folder keeps its key in its `meta` table: the key is
///   moved to the folder (written and synced there first, then deleted from the
///   store with SQLite's secure_delete, so that the freed page is zeroed), and the
///   store keeps the key's fingerprint instead; the hashes stay valid, so finding a
///   customer by phone works as before;
/// - otherwise the folder's key must have the fingerprint the store keeps: a
///   folder with another key, or none, is refused (restore the folder from its
///   backup) rather than hashing new customers with a key that finds none of the
///   old ones;
/// - a store without customers' key gets the folder's key (made if missing).
/// What the operator is told: a key moved out of the store (`moved`, which matters
/// at once: old backups hold the key) or a new key made (`made`).
struct KeyNotice {
  std::string moved;
  std::string made;
};
Status AdoptCustomerHashKey(Store& store, Secrets& secrets, KeyNotice* notice);

/// The Ed25519 signature (64 raw bytes) of `message` under the log's signing key
/// (`Secrets::log_signing_key`, PKCS#8 PEM); Invalid for another kind of key.
Result<std::string> SignWithLogKey(std::string_view signing_key_pem, std::string_view message);
/// Whether `signature` is the Ed25519 signature of `message` by the raw 32-byte
/// public key.
bool VerifyLogSignature(std::string_view public_key, std::string_view message,
                        std::string_view signature);

}  // namespace pingma::registry
