// Bearer tokens and their lifecycle: issued with an optional last day and a note,
// listed by a short public id, revoked; who a request speaks for; when each token
// was last used; and addresses that keep presenting bad tokens slowed down.
//
// Only the SHA-256 of a token's secret is stored; the secret is shown once, when
// it is issued, and never listed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "access/principal.h"
#include "http/rate_limit.h"
#include "http/reply.h"
#include "pingma/common/domain.h"
#include "store/store.h"

namespace pingma::registry {

/// The first instant at which a token whose last day is `last_day` no longer works:
/// the midnight that ends that day in a zone `utc_offset_minutes` east of UTC. For
/// Asia/Shanghai (UTC+8) and 2027-03-31 that is 2027-03-31T16:00:00Z.
Instant TokenExpiry(Date last_day, int utc_offset_minutes);

enum class TokenState { kActive, kExpired, kRevoked };
const char* ToString(TokenState state);

/// A token's state at `now`: revoked whatever its expiry once it is revoked;
/// expired from `expires_at` on (that instant included); active otherwise.
TokenState JudgeToken(std::optional<Instant> expires_at, bool revoked, Instant now);

/// Failed authentications per address (AddressKey), as a leaky bucket: kBurst
/// failures at once, then one every kWindowMs / kBurst. An address whose bucket is
/// full must wait; failures are not counted while it waits. At most kMaxAddresses
/// are tracked at once (beyond them a new address goes uncounted, so that memory
/// stays bounded). Thread-safe.
class AuthThrottle {
 public:
  static constexpr int kBurst = 20;
  static constexpr std::int64_t kWindowMs = 60'000;

  /// Whole seconds (at least 1) `address` must wait before another failure could be
  /// counted; 0 when it need not wait.
  std::int64_t RetryAfterSeconds(const std::string& address, Instant now);
  /// Counts one failure of `address`.
  void CountFailure(const std::string& address, Instant now);

 private:
  struct Bucket {
    double level = 0;  ///< failures not yet leaked away, as of `at_ms`
    std::int64_t at_ms = 0;
  };
  static double LevelAt(const Bucket& bucket, std::int64_t now_ms);
  static constexpr size_t kSweepAt = 100'000;
  static constexpr size_t kMaxAddresses = 1'000'000;

  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::int64_t swept_at_ms_ = 0;
};

/// Whether company `company` holds the station or courier `subject` of a token of
/// role `role`: the only tokens a company may issue, see and revoke.
Result<bool> CompanyHolds(Conn& conn, const std::string& company, std::string_view role,
                          const std::string& subject);

/// What a new token is for.
struct TokenTerms {
  Role role = Role::kAdmin;
  std::string subject;
  std::optional<Date> expires;  ///< the last day it works (policy zone); none: no end
  std::string note;             ///< free text for people ("Li's phone"); not in the log
};

/// A token just issued: its public id and the secret, which is never shown again.
struct IssuedToken {
  std::string id;
  std::string secret;
  std::optional<Instant> expires_at;
};

/// A token as listed: everything but the secret and its hash.
struct TokenRecord {
  std::string id;
  std::string role;
  std::string subject;
  std::string note;
  Instant created;
  std::optional<Date> expires;
  std::optional<Instant> expires_at;
  std::optional<Instant> last_used;
  std::optional<Instant> revoked;
};

/// {id, role, subject, note, created_at, expires, expires_at, last_used_at,
/// revoked_at, state}: instants RFC 3339 or null, `expires` YYYY-MM-DD or null.
json TokenJson(const TokenRecord& token, Instant now);

/// The registry's tokens. Authenticate runs on every /v1/ request and answers from
/// memory: a token read from the database is kept, and trusted for kTrustMs after
/// the last look at the newest revocation (max(revoked_seq), one indexed read at
/// most every kRecheckMs, by one thread); when that has changed, every kept token
/// is read again. So a token revoked at any registry on the same database is
/// refused here within kTrustMs, without a database read per request. Expiry is
/// judged on the clock, each request.
///
/// The last use of each token is kept in memory and written, for all the tokens
/// used since the last write, by the first request at least kUseFlushMs after it
/// (so at most once a minute per token), and when the store closes. List shows
/// the uses seen here that are not yet written.
///
/// Thread-safe. One per store (it is the store's before-close function), which must
/// outlive it. Going, it waits for a write of uses in flight and starts none; the
/// uses still unwritten then are written only if the store was closed first (as
/// Serve closes it before the Service goes).
class BearerTokens {
 public:
  static constexpr std::int64_t kRecheckMs = 500;
  static constexpr std::int64_t kTrustMs = 900;
  static constexpr std::int64_t kUseFlushMs = 60'000;
  static constexpr size_t kMaxNoteBytes = 200;

  BearerTokens(Store* store, const Clock* clock, int utc_offset_minutes);
  ~BearerTokens();
  BearerTokens(const BearerTokens&) = delete;
  BearerTokens& operator=(const BearerTokens&) = delete;

  struct Authentication {
    std::optional<Principal> who;
    /// When there is no `who`: 401 (UNAUTHENTICATED, TOKEN_REVOKED or TOKEN_EXPIRED),
    /// 429 with Retry-After for an address that must wait, or the store's error.
    Reply refusal;
  };
  /// Who the Authorization header `header` speaks for, from `client` (the peer's
  /// address, for the throttle). Only tokens that are no token at all count as
  /// failures of the address; one that must wait gets 429 for any such, without a
  /// database read. A real token, revoked or expired, always gets its 401 with
  /// its code: a station must learn that its token is revoked, not that the
  /// registry is busy (it would decide on its replica).
  Authentication Authenticate(std::string_view header, const std::string& client);

  /// The terms' own checks: subject 1..64 bytes, note at most kMaxNoteBytes,
  /// neither with a control character (CheckText), last day not before today.
  Status CheckTerms(const TokenTerms& terms) const;
  /// Inside a write job: stores a new token (terms checked) and its token_added
  /// event, by `actor`.
  Reply Issue(WriteTx& tx, const Principal& actor, const TokenTerms& terms, IssuedToken* out) const;
  /// Inside a write job: revokes token `id` (204), by `actor`; 404 when there is no
  /// such token or a company actor does not hold it. Revoking a revoked token
  /// changes nothing (`*already` says so).
  Reply Revoke(WriteTx& tx, const Principal& actor, const std::string& id,
               bool* already = nullptr) const;
  /// Issue and Revoke as jobs of their own, waited for, by the command line (actor
  /// admin "cli"): a failure as its Status (Invalid, NotFound, or the store's).
  Result<IssuedToken> IssueNow(const TokenTerms& terms);
  Status RevokeNow(const std::string& id, bool* already);
  /// Forgets every token kept in memory (after a revocation here committed).
  void ForgetKept();
  /// The tokens `viewer` may see (admin: all; company: those of its stations and
  /// couriers), oldest first, with the last uses seen here that are not yet written.
  Result<std::vector<TokenRecord>> List(Conn& conn, const Principal& viewer);
  /// Writes every last use not yet written.
  void FlushUse();

  int utc_offset_minutes() const { return utc_offset_minutes_; }

 private:
  struct Kept {
    std::string id;
    Principal who;
    std::optional<Instant> expires_at;
    std::optional<Instant> revoked;
  };
  struct Use {
    std::int64_t at = 0;       ///< the latest use seen here
    std::int64_t written = 0;  ///< the latest use written to the store
  };

  /// Looks at the newest revocation when kRecheckMs have passed since the last look.
  void RecheckIfDue(Instant now);
  bool TrustedLocked(Instant now) const {
    return verified_at_ <= now.unix_ms && now.unix_ms < verified_at_ + kTrustMs;
  }
  /// Notes a use of token `id`; true when the uses are due to be written.
  bool NoteUseLocked(const std::string& id, Instant now);
  /// The uses seen here and not yet written: (token id, latest use in Unix ms).
  std::vector<std::pair<std::string, std::int64_t>> UnwrittenUsesLocked() const;
  /// Queues a job that writes them; flushing_ is true.
  void WriteUses(std::vector<std::pair<std::string, std::int64_t>> dirty);
  /// The 401 of a token that is not active.
  static Authentication Refuse(const Kept& token, TokenState state);
  Authentication TooMany(std::int64_t retry_after_s) const;

  Store* store_;
  const Clock* clock_;
  int utc_offset_minutes_;
  AuthThrottle throttle_;

  std::mutex mu_;
  std::unordered_map<std::string, Kept> kept_;  ///< by SHA-256 of the secret
  /// Every SHA-256 found in the store so far: real tokens (none is ever deleted),
  /// read again past the throttle when they are not kept.
  std::unordered_set<std::string> real_;
  /// Bumped whenever kept_ is emptied: a token read before must not be kept after.
  std::uint64_t generation_ = 0;
  std::int64_t verified_at_ = INT64_MIN;       ///< when the last look at revocations began
  std::int64_t revoked_seen_ = -1;             ///< max(revoked_seq) at that look
  std::unordered_map<std::string, Use> used_;  ///< by token id
  std::int64_t next_flush_ms_;                 ///< when the uses are next due to be written
  bool flushing_ = false;                      ///< a flush job is queued
  bool flush_again_ = false;                   ///< uses came in while it was
  bool going_ = false;                         ///< the destructor runs: no more flushes
  std::condition_variable flushed_;            ///< flushing_ went false

  std::atomic<std::int64_t> next_check_ms_{INT64_MIN};
};

}  // namespace pingma::registry
