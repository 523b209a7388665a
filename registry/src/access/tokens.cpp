// Bearer tokens: their lifecycle, authentication, last use and the throttle of bad
// tokens (tokens.h); and the HTTP calls that issue, list and revoke them.
#include "access/tokens.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include <fmt/format.h>

#include "http/fields.h"

namespace pingma::registry {
namespace {

constexpr std::int64_t kDayMs = 24 * 60 * 60 * 1000;

/// `n` random bytes as lower-case hex.
Result<std::string> RandomHex(size_t n) {
  unsigned char bytes[32];
  if (n > sizeof bytes || RAND_bytes(bytes, static_cast<int>(n)) != 1) {
    return Status::Internal("no random bytes");
  }
  std::string out;
  for (size_t i = 0; i < n; ++i) out += fmt::format("{:02x}", bytes[i]);
  return out;
}

std::optional<Instant> OptInstant(const sql::Statement& st, int col) {
  if (st.IsNull(col)) return std::nullopt;
  return Instant{st.Int(col)};
}

json InstantOrNull(const std::optional<Instant>& at) {
  return at ? json(at->ToString()) : json(nullptr);
}

}  // namespace

/// Whether company `company` holds the station or courier `subject` of a token of
/// role `role`: the only tokens a company may issue, see and revoke.
Result<bool> CompanyHolds(Conn& conn, const std::string& company, std::string_view role,
                          const std::string& subject) {
  const char* sql = role == ToString(Role::kStation)
                        ? "SELECT 1 FROM stations WHERE id = $1 AND company_id = $2"
                    : role == ToString(Role::kCourier)
                        ? "SELECT 1 FROM couriers WHERE id = $1 AND company_id = $2"
                        : nullptr;
  if (sql == nullptr) return false;
  PINGMA_ASSIGN_OR_RETURN(auto st, conn.Prepare(sql));
  st->Bind(1, subject).Bind(2, company);
  return st->Step();
}

namespace {

Reply NoContent() {
  Reply r;
  r.status = 204;
  // An empty body: a JSON reply would send "{}".
  r.raw_content_type = "application/json; charset=utf-8";
  return r;
}

Reply Refusal(int status, const char* code, std::string message) {
  Reply r;
  r.status = status;
  r.body = {{"error", {{"code", code}, {"message", std::move(message)}}}};
  return r;
}

}  // namespace

Instant TokenExpiry(Date last_day, int utc_offset_minutes) {
  return Instant{(last_day.days() + 1) * kDayMs -
                 static_cast<std::int64_t>(utc_offset_minutes) * 60 * 1000};
}

const char* ToString(TokenState state) {
  switch (state) {
    case TokenState::kActive:
      return "active";
    case TokenState::kExpired:
      return "expired";
    case TokenState::kRevoked:
      return "revoked";
  }
  return "?";
}

TokenState JudgeToken(std::optional<Instant> expires_at, bool revoked, Instant now) {
  if (revoked) return TokenState::kRevoked;
  if (expires_at && now.unix_ms >= expires_at->unix_ms) return TokenState::kExpired;
  return TokenState::kActive;
}

// ---- AuthThrottle ---------------------------------------------------------------

double AuthThrottle::LevelAt(const Bucket& bucket, std::int64_t now_ms) {
  const double leaked = static_cast<double>(std::max<std::int64_t>(0, now_ms - bucket.at_ms)) *
                        kBurst / static_cast<double>(kWindowMs);
  return std::max(0.0, bucket.level - leaked);
}

std::int64_t AuthThrottle::RetryAfterSeconds(const std::string& address, Instant now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(address);
  if (it == buckets_.end()) return 0;
  const double over = LevelAt(it->second, now.unix_ms) + 1 - kBurst;
  if (over <= 0) return 0;
  const double wait_ms = over * static_cast<double>(kWindowMs) / kBurst;
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(wait_ms / 1000)));
}

void AuthThrottle::CountFailure(const std::string& address, Instant now) {
  std::lock_guard<std::mutex> lock(mu_);
  // Keeps the map to the addresses whose buckets still hold something: swept when
  // it is large, at most once a leak interval (a sweep is a walk of all of it).
  if (buckets_.size() > kSweepAt && now.unix_ms - swept_at_ms_ >= kWindowMs / kBurst) {
    swept_at_ms_ = now.unix_ms;
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      it = LevelAt(it->second, now.unix_ms) <= 0 ? buckets_.erase(it) : std::next(it);
    }
  }
  auto it = buckets_.find(address);
  if (it == buckets_.end()) {
    // Past the limit, a new address goes uncounted rather than grow the map.
    if (buckets_.size() >= kMaxAddresses) return;
    it = buckets_.emplace(address, Bucket{}).first;
  }
  Bucket& bucket = it->second;
  bucket.level = std::min<double>(kBurst, LevelAt(bucket, now.unix_ms) + 1);
  bucket.at_ms = now.unix_ms;
}

// ---- TokenJson --------------------------------------------------------------------

json TokenJson(const TokenRecord& t, Instant now) {
  return {{"id", t.id},
          {"role", t.role},
          {"subject", t.subject},
          {"note", t.note},
          {"created_at", t.created.ToString()},
          {"expires", t.expires ? json(t.expires->ToString()) : json(nullptr)},
          {"expires_at", InstantOrNull(t.expires_at)},
          {"last_used_at", InstantOrNull(t.last_used)},
          {"revoked_at", InstantOrNull(t.revoked)},
          {"state", ToString(JudgeToken(t.expires_at, t.revoked.has_value(), now))}};
}

// ---- BearerTokens -------------------------------------------------------------------

BearerTokens::BearerTokens(Store* store, const Clock* clock, int utc_offset_minutes)
    : store_(store),
      clock_(clock),
      utc_offset_minutes_(utc_offset_minutes),
      next_flush_ms_(clock->Now().unix_ms + kUseFlushMs) {
  store_->set_before_close([this] { FlushUse(); });
}

BearerTokens::~BearerTokens() {
  store_->set_before_close(nullptr);
  std::unique_lock<std::mutex> lock(mu_);
  going_ = true;
  flushed_.wait(lock, [this] { return !flushing_; });
}

BearerTokens::Authentication BearerTokens::Authenticate(std::string_view header,
                                                        const std::string& client) {
  constexpr std::string_view kBearer = "Bearer ";
  if (header.empty()) {
    return {std::nullopt, ErrorReply(Status::Unauthenticated(
                              "this call needs an 'Authorization: Bearer TOKEN' header"))};
  }
  // The scheme's name is case-insensitive (RFC 9110, 11.1).
  const auto lower = [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  };
  const bool bearer = header.size() > kBearer.size() &&
                      std::equal(kBearer.begin(), kBearer.end(), header.begin(),
                                 [&lower](char a, char b) { return lower(a) == lower(b); });
  if (!bearer) {
    return {std::nullopt,
            ErrorReply(Status::Unauthenticated("the Authorization header must be 'Bearer TOKEN'"))};
  }
  const std::string hash = Sha256(header.substr(kBearer.size()));
  const Instant now = clock_->Now();
  RecheckIfDue(now);

  bool known = false;  // a real token, not trusted any more: read again whatever the throttle
  std::uint64_t generation = 0;
  std::optional<Principal> who;
  std::optional<Kept> refused;
  bool write_use = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation = generation_;
    auto it = kept_.find(hash);
    if (it != kept_.end() && TrustedLocked(now)) {
      const Kept& token = it->second;
      if (JudgeToken(token.expires_at, token.revoked.has_value(), now) == TokenState::kActive) {
        who = token.who;
        write_use = NoteUseLocked(token.id, now);
      } else {
        refused = token;
      }
    } else {
      known = it != kept_.end() || real_.count(hash) != 0;
    }
  }
  if (who) {
    if (write_use) FlushUse();
    return {std::move(who), {}};
  }
  const std::string address = AddressKey(client);
  if (refused) {
    return Refuse(*refused, JudgeToken(refused->expires_at, refused->revoked.has_value(), now));
  }
  if (!known) {
    if (const std::int64_t wait = throttle_.RetryAfterSeconds(address, now); wait > 0) {
      return TooMany(wait);
    }
  }
  auto found = store_->Read([&](Conn& conn) -> Result<std::optional<Kept>> {
    auto st = conn.Prepare(
        "SELECT id, role, subject, expires_at, revoked_at FROM tokens WHERE hash = $1");
    if (!st.ok()) return st.status();
    (*st)->BindBlob(1, hash.data(), hash.size());
    PINGMA_ASSIGN_OR_RETURN(auto row, (*st)->Step());
    if (!row) return std::optional<Kept>();
    auto role = ParseRole((*st)->Text(1));
    if (!role.ok()) return Status::Corruption("a stored token has an unknown role");
    return std::optional<Kept>(Kept{(*st)->Text(0), Principal{*role, (*st)->Text(2)},
                                    OptInstant(**st, 3), OptInstant(**st, 4)});
  });
  if (!found.ok()) return {std::nullopt, ErrorReply(found.status())};
  if (!*found) {
    if (const std::int64_t wait = throttle_.RetryAfterSeconds(address, now); wait > 0) {
      return TooMany(wait);
    }
    throttle_.CountFailure(address, now);
    return {std::nullopt, ErrorReply(Status::Unauthenticated("the bearer token is not valid"))};
  }
  const Kept& token = **found;
  const TokenState state = JudgeToken(token.expires_at, token.revoked.has_value(), now);
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Not when the kept tokens were forgotten meanwhile: the row may predate a
    // revocation that made them go.
    if (generation_ == generation) kept_[hash] = token;
    real_.insert(hash);
    if (state == TokenState::kActive) write_use = NoteUseLocked(token.id, now);
  }
  if (state != TokenState::kActive) return Refuse(token, state);
  if (write_use) FlushUse();
  return {token.who, {}};
}

BearerTokens::Authentication BearerTokens::Refuse(const Kept& token, TokenState state) {
  if (state == TokenState::kRevoked) {
    return {std::nullopt,
            Refusal(401, "TOKEN_REVOKED",
                    fmt::format("this token ({}) was revoked at {}", token.id,
                                token.revoked ? token.revoked->ToString() : std::string("?")))};
  }
  return {std::nullopt,
          Refusal(401, "TOKEN_EXPIRED",
                  fmt::format("this token ({}) expired at {}", token.id,
                              token.expires_at ? token.expires_at->ToString() : "?"))};
}

BearerTokens::Authentication BearerTokens::TooMany(std::int64_t retry_after_s) const {
  Reply r =
      Refusal(429, "TOO_MANY_REQUESTS",
              fmt::format("too many bad tokens from this address ({} at once, then one "
                          "every {} s); try again in {} s",
                          AuthThrottle::kBurst,
                          AuthThrottle::kWindowMs / AuthThrottle::kBurst / 1000, retry_after_s));
  r.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
  return {std::nullopt, std::move(r)};
}

void BearerTokens::RecheckIfDue(Instant now) {
  std::int64_t due = next_check_ms_.load();
  // Due when the time has come, or when the clock went back past the last look.
  const bool is_due = now.unix_ms >= due || due - now.unix_ms > kRecheckMs;
  if (!is_due || !next_check_ms_.compare_exchange_strong(due, now.unix_ms + kRecheckMs)) return;
  auto newest = store_->Read([](Conn& conn) -> Result<std::int64_t> {
    PINGMA_ASSIGN_OR_RETURN(
        auto st, conn.Prepare(fmt::format("SELECT COALESCE(MAX(revoked_seq), 0) FROM tokens "
                                          "WHERE revoked_seq < {}",
                                          HorizonSql(conn))));
    PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
    return row ? st->Int(0) : 0;
  });
  std::lock_guard<std::mutex> lock(mu_);
  if (!newest.ok()) {
    // Unsure whether a token was revoked: trust none kept until a look succeeds.
    verified_at_ = INT64_MIN;
    next_check_ms_ = now.unix_ms;
    return;
  }
  if (*newest != revoked_seen_) {
    kept_.clear();
    ++generation_;
    revoked_seen_ = *newest;
  }
  // The look began at `now`: it saw every revocation committed before.
  verified_at_ = now.unix_ms;
}

bool BearerTokens::NoteUseLocked(const std::string& id, Instant now) {
  Use& use = used_[id];
  use.at = std::max(use.at, now.unix_ms);
  return now.unix_ms >= next_flush_ms_;
}

void BearerTokens::ForgetKept() {
  std::lock_guard<std::mutex> lock(mu_);
  kept_.clear();
  ++generation_;
}

void BearerTokens::FlushUse() {
  std::vector<std::pair<std::string, std::int64_t>> dirty;
  {
    std::lock_guard<std::mutex> lock(mu_);
    next_flush_ms_ = clock_->Now().unix_ms + kUseFlushMs;
    if (going_) return;
    if (flushing_) {
      flush_again_ = true;
      return;
    }
    dirty = UnwrittenUsesLocked();
    if (dirty.empty()) return;
    flushing_ = true;
  }
  WriteUses(std::move(dirty));
}

std::vector<std::pair<std::string, std::int64_t>> BearerTokens::UnwrittenUsesLocked() const {
  std::vector<std::pair<std::string, std::int64_t>> dirty;
  for (const auto& [id, use] : used_) {
    if (use.at > use.written) dirty.emplace_back(id, use.at);
  }
  return dirty;
}

void BearerTokens::WriteUses(std::vector<std::pair<std::string, std::int64_t>> dirty) {
  auto job = [dirty](WriteTx& tx) -> Reply {
    for (const auto& [id, at] : dirty) {
      auto st = tx.conn().Prepare(
          "UPDATE tokens SET last_used_at = $1 WHERE id = $2 AND "
          "(last_used_at IS NULL OR last_used_at < $3)");
      if (!st.ok()) return ErrorReply(st.status());
      (*st)->Bind(1, at).Bind(2, id).Bind(3, at);
      if (Status s = (*st)->Run(); !s.ok()) return ErrorReply(s);
    }
    return Reply{};
  };
  // flushing_ stays true until no write follows, so that the destructor waits for
  // this callback and any write it starts.
  store_->Submit(std::move(job), [this, dirty](const Reply& reply) {
    std::vector<std::pair<std::string, std::int64_t>> next;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!reply.failed()) {
        for (const auto& [id, at] : dirty) {
          Use& use = used_[id];
          use.written = std::max(use.written, at);
        }
      }
      // After a failure (the store closing, or failing), the next use tries again.
      if (std::exchange(flush_again_, false) && !reply.failed() && !going_) {
        next = UnwrittenUsesLocked();
      }
      if (next.empty()) {
        flushing_ = false;
        flushed_.notify_all();
      }
    }
    if (!next.empty()) WriteUses(std::move(next));
  });
}

Status BearerTokens::CheckTerms(const TokenTerms& terms) const {
  if (terms.subject.empty() || terms.subject.size() > 64) {
    return Status::Invalid("the token's subject must be 1 to 64 characters");
  }
  if (terms.note.size() > kMaxNoteBytes) {
    return Status::Invalid(fmt::format("the note is longer than {} bytes", kMaxNoteBytes));
  }
  PINGMA_RETURN_IF_ERROR(CheckText("subject", terms.subject));
  PINGMA_RETURN_IF_ERROR(CheckText("note", terms.note));
  if (terms.expires) {
    const Date today = clock_->Now().LocalDate(utc_offset_minutes_);
    if (*terms.expires < today) {
      return Status::Invalid(fmt::format("the last day {} is before today ({})",
                                         terms.expires->ToString(), today.ToString()));
    }
  }
  return Status::Ok();
}

Reply BearerTokens::Issue(WriteTx& tx, const Principal& actor, const TokenTerms& terms,
                          IssuedToken* out) const {
  if (Status s = CheckTerms(terms); !s.ok()) return ErrorReply(s);
  auto secret = RandomHex(24);
  if (!secret.ok()) return ErrorReply(secret.status());
  std::string id;
  for (int attempt = 0; id.empty(); ++attempt) {  // 48 random bits: a clash is rare
    auto candidate = RandomHex(6);
    if (!candidate.ok()) return ErrorReply(candidate.status());
    auto taken = tx.conn().Prepare("SELECT 1 FROM tokens WHERE id = $1");
    if (!taken.ok()) return ErrorReply(taken.status());
    (*taken)->Bind(1, "tk-" + *candidate);
    auto row = (*taken)->Step();
    if (!row.ok()) return ErrorReply(row.status());
    if (!*row) id = "tk-" + *candidate;
    if (attempt == 8) return ErrorReply(Status::Internal("no free token id"));
  }
  const std::string token = "pm_" + *secret;
  const std::string hash = Sha256(token);
  std::optional<Instant> expires_at;
  if (terms.expires) expires_at = TokenExpiry(*terms.expires, utc_offset_minutes_);
  auto st = tx.conn().Prepare(
      "INSERT INTO tokens(hash, role, subject, created_at, id, note, expires, expires_at) "
      "VALUES($1,$2,$3,$4,$5,$6,$7,$8)");
  if (!st.ok()) return ErrorReply(st.status());
  (*st)->BindBlob(1, hash.data(), hash.size()).Bind(2, ToString(terms.role)).Bind(3, terms.subject);
  (*st)->Bind(4, tx.now().unix_ms).Bind(5, id).Bind(6, terms.note);
  if (terms.expires) {
    (*st)->Bind(7, terms.expires->ToString()).Bind(8, expires_at->unix_ms);
  } else {
    (*st)->BindNull(7).BindNull(8);
  }
  if (Status s = (*st)->Run(); !s.ok()) return ErrorReply(s);
  // The note stays out of the log, which keeps everything for ever: people write
  // names into notes.
  json event = {{"id", id}, {"role", ToString(terms.role)}, {"subject", terms.subject}};
  if (terms.expires) event["expires"] = terms.expires->ToString();
  auto ev = tx.Append(
      {"", "", "token_added", tx.now(), ToString(actor.role), actor.subject, event.dump()});
  if (!ev.ok()) return ErrorReply(ev.status());
  *out = IssuedToken{id, token, expires_at};
  json body = {{"id", id},
               {"token", token},
               {"role", ToString(terms.role)},
               {"subject", terms.subject},
               {"note", terms.note},
               {"expires", terms.expires ? json(terms.expires->ToString()) : json(nullptr)},
               {"expires_at", InstantOrNull(expires_at)}};
  return Reply{201, std::move(body), {}, {}};
}

Reply BearerTokens::Revoke(WriteTx& tx, const Principal& actor, const std::string& id,
                           bool* already) const {
  // A company is told the same of another's token as of none.
  const Status unknown = Status::NotFound(fmt::format("no token {}", id));
  std::string role, subject;
  bool revoked = false;
  {
    auto st = tx.conn().Prepare("SELECT role, subject, revoked_at FROM tokens WHERE id = $1");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, id);
    auto row = (*st)->Step();
    if (!row.ok()) return ErrorReply(row.status());
    if (!*row) return ErrorReply(unknown);
    role = (*st)->Text(0);
    subject = (*st)->Text(1);
    revoked = !(*st)->IsNull(2);
  }
  if (actor.role == Role::kCompany) {
    auto holds = CompanyHolds(tx.conn(), actor.subject, role, subject);
    if (!holds.ok()) return ErrorReply(holds.status());
    if (!*holds) return ErrorReply(unknown);
  } else if (actor.role != Role::kAdmin) {
    return ErrorReply(Status::PermissionDenied("only an admin or a company may revoke tokens"));
  }
  if (already != nullptr) *already = revoked;
  if (revoked) return NoContent();
  auto seq = tx.Append({"", "", "token_revoked", tx.now(), ToString(actor.role), actor.subject,
                        json{{"id", id}, {"role", role}, {"subject", subject}}.dump()});
  if (!seq.ok()) return ErrorReply(seq.status());
  auto update =
      tx.conn().Prepare("UPDATE tokens SET revoked_at = $1, revoked_seq = $2 WHERE id = $3");
  if (!update.ok()) return ErrorReply(update.status());
  (*update)->Bind(1, tx.now().unix_ms).Bind(2, tx.Revision(*seq)).Bind(3, id);
  if (Status s = (*update)->Run(); !s.ok()) return ErrorReply(s);
  return NoContent();
}

namespace {

const Principal kCommandLine{Role::kAdmin, "cli"};

// A failed reply's message as a Status of the matching kind.
Status StatusOf(const Reply& reply) {
  const std::string message = reply.body["error"]["message"].get<std::string>();
  switch (reply.status) {
    case 404:
      return Status::NotFound(message);
    case 422:
      return Status::Invalid(message);
    default:
      return Status::IoError(message);
  }
}

}  // namespace

Result<IssuedToken> BearerTokens::IssueNow(const TokenTerms& terms) {
  IssuedToken issued;
  Reply r = store_->Run([&](WriteTx& tx) { return Issue(tx, kCommandLine, terms, &issued); });
  if (r.failed()) return StatusOf(r);
  return issued;
}

Status BearerTokens::RevokeNow(const std::string& id, bool* already) {
  Reply r = store_->Run([&](WriteTx& tx) { return Revoke(tx, kCommandLine, id, already); });
  if (r.failed()) return StatusOf(r);
  ForgetKept();
  return Status::Ok();
}

Result<std::vector<TokenRecord>> BearerTokens::List(Conn& conn, const Principal& viewer) {
  constexpr const char* kColumns =
      "t.id, t.role, t.subject, t.note, t.created_at, t.expires, t.expires_at, "
      "t.last_used_at, t.revoked_at";
  std::string sql;
  if (viewer.role == Role::kAdmin) {
    sql = fmt::format("SELECT {} FROM tokens t ORDER BY t.created_at, t.id", kColumns);
  } else if (viewer.role == Role::kCompany) {
    sql = fmt::format(
        "SELECT {} FROM tokens t WHERE (t.role = 'station' AND t.subject IN "
        "(SELECT id FROM stations WHERE company_id = $1)) OR (t.role = 'courier' AND "
        "t.subject IN (SELECT id FROM couriers WHERE company_id = $1)) "
        "ORDER BY t.created_at, t.id",
        kColumns);
  } else {
    return Status::PermissionDenied("only an admin or a company may list tokens");
  }
  PINGMA_ASSIGN_OR_RETURN(auto st, conn.Prepare(sql));
  if (viewer.role == Role::kCompany) st->Bind(1, viewer.subject);
  std::vector<TokenRecord> out;
  for (;;) {
    PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
    if (!row) break;
    TokenRecord t;
    t.id = st->Text(0);
    t.role = st->Text(1);
    t.subject = st->Text(2);
    t.note = st->OptText(3).value_or("");
    t.created = Instant{st->Int(4)};
    if (auto day = st->OptText(5)) {
      if (auto parsed = Date::Parse(*day); parsed.ok()) t.expires = *parsed;
    }
    t.expires_at = OptInstant(*st, 6);
    t.last_used = OptInstant(*st, 7);
    t.revoked = OptInstant(*st, 8);
    out.push_back(std::move(t));
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (TokenRecord& t : out) {
    auto it = used_.find(t.id);
    if (it != used_.end() && (!t.last_used || t.last_used->unix_ms < it->second.at)) {
      t.last_used = Instant{it->second.at};
    }
  }
  return out;
}

}  // namespace pingma::registry
