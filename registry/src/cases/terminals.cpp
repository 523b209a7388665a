// In-vehicle terminals (JT/T 808): registration, authentication, positions.
#include "cases/terminals.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <fmt/format.h>

#include "store/chain.h"

namespace pingma::registry {
namespace {

/// JT/T 808 status bit 1: the position is located (定位); else lat/lon mean nothing.
constexpr std::uint32_t kLocated = 1u << 1;

/// 16 random bytes as 32 hex digits: the code a terminal authenticates with.
Result<std::string> NewAuthCode() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return Status::Internal("no random bytes (OpenSSL)");
  return HexOf(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

}  // namespace

/// The vehicle whose terminal has `phone` (normalised), or empty. A vehicle's
/// terminal is set when the vehicle is made and never changed: once found, it is
/// kept.
Result<std::string> Terminals::VehicleOfTerminal(Conn& conn, const std::string& phone) {
  {
    std::lock_guard lock(mu_);
    if (auto it = vehicles_.find(phone); it != vehicles_.end()) return it->second;
  }
  PINGMA_ASSIGN_OR_RETURN(auto st,
                          conn.Prepare("SELECT id FROM vehicles WHERE terminal_phone = $1"));
  st->Bind(1, phone);
  PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
  std::string vehicle = row ? st->Text(0) : "";
  st->Reset();
  if (!vehicle.empty()) {
    std::lock_guard lock(mu_);
    vehicles_.emplace(phone, vehicle);
  }
  return vehicle;
}

void Terminals::Register(const jt808::Registration& r, RegisterDone done) {
  using jt808::RegistrationResult;
  const std::string phone = jt808::NormalizePhone(r.phone);
  auto code = NewAuthCode();
  if (!code.ok()) return done(RegistrationResult::kNoSuchTerminal, "");
  const json detail = {{"maker", r.maker},
                       {"model", r.model},
                       {"edition", jt808::ToString(r.version)},
                       {"province", r.province},
                       {"city", r.city}};
  auto result = std::make_shared<RegistrationResult>(RegistrationResult::kNoSuchTerminal);
  Write(
      [done = std::move(done), result, code = *code](const Reply& reply) {
        if (reply.failed()) return done(RegistrationResult::kNoSuchTerminal, "");
        done(*result, *result == RegistrationResult::kOk ? code : "");
      },
      [this, phone, terminal_id = r.terminal_id, detail, result,
       code = *code](WriteTx& tx) -> Reply {
        Conn& conn = tx.conn();
        auto vehicle = VehicleOfTerminal(conn, phone);
        if (!vehicle.ok()) return ErrorReply(vehicle.status());
        if (vehicle->empty()) return Reply{};  // kNoSuchTerminal
        auto st = conn.Prepare("SELECT terminal_id FROM terminals WHERE phone = $1");
        if (!st.ok()) return ErrorReply(st.status());
        (*st)->Bind(1, phone);
        auto row = (*st)->Step();
        if (!row.ok()) return ErrorReply(row.status());
        const bool known = *row;
        if (known && (*st)->Text(0) != terminal_id) {
          *result = RegistrationResult::kTerminalRegistered;
          return Reply{};
        }
        (*st)->Reset();
        const std::string hash = Sha256(code);
        auto put = conn.Prepare(
            "INSERT INTO terminals(phone, vehicle_id, terminal_id, auth_hash, registered_at, "
            "detail) VALUES($1,$2,$3,$4,$5,$6) ON CONFLICT(phone) DO UPDATE SET vehicle_id = "
            "excluded.vehicle_id, auth_hash = excluded.auth_hash, registered_at = "
            "excluded.registered_at, detail = excluded.detail");
        if (!put.ok()) return ErrorReply(put.status());
        (*put)->Bind(1, phone).Bind(2, *vehicle).Bind(3, terminal_id);
        (*put)->BindBlob(4, hash.data(), hash.size()).Bind(5, tx.now().unix_ms);
        (*put)->Bind(6, detail.dump());
        if (Status s = (*put)->Run(); !s.ok()) return ErrorReply(s);
        json event = detail;
        event["vehicle"] = *vehicle;
        event["phone"] = phone;
        event["terminal_id"] = terminal_id;
        event["again"] = known;
        auto ev =
            tx.Append({"", "", "terminal_registered", tx.now(), "terminal", phone, event.dump()});
        if (!ev.ok()) return ErrorReply(ev.status());
        *result = RegistrationResult::kOk;
        return Reply{};
      });
}

void Terminals::Authenticate(const jt808::Authentication& a, AuthenticateDone done) {
  const std::string phone = jt808::NormalizePhone(a.phone);
  const std::string presented = Sha256(a.auth_code);
  auto ok = store_->Read([&](Conn& conn) -> Result<bool> {
    PINGMA_ASSIGN_OR_RETURN(auto st,
                            conn.Prepare("SELECT auth_hash FROM terminals WHERE phone = $1"));
    st->Bind(1, phone);
    PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
    if (!row) return false;
    const std::string_view stored = st->Blob(0);
    const bool same = stored.size() == presented.size() &&
                      CRYPTO_memcmp(stored.data(), presented.data(), stored.size()) == 0;
    st->Reset();
    return same;
  });
  done(ok.ok() && *ok);
}

void Terminals::StorePositions(const std::string& phone, std::vector<jt808::Location> positions,
                               StoreDone done) {
  const Instant now = clock_->Now();
  const std::string key = jt808::NormalizePhone(phone);
  std::vector<PositionIn> in;
  in.reserve(positions.size());
  for (const jt808::Location& l : positions) {
    if ((l.status & kLocated) == 0 || !CheckPositionTime(Instant{l.at_ms}, now, policy_).ok()) {
      skipped_.fetch_add(1);
      continue;
    }
    PositionIn p;
    // No event_id: a report sent again (its reply lost) has the same time, and the
    // time (to the second) is the position's key.
    p.at = Instant{l.at_ms};
    p.lat = l.lat;
    p.lon = l.lon;
    p.speed_kmh = l.speed_kmh;
    p.heading = l.heading;
    in.push_back(std::move(p));
  }
  if (in.empty()) return done(true);
  Write([done = std::move(done)](const Reply& reply) { done(!reply.failed()); },
        [this, key, in = std::move(in)](WriteTx& tx) mutable -> Reply {
          auto vehicle = VehicleOfTerminal(tx.conn(), key);
          if (!vehicle.ok()) return ErrorReply(vehicle.status());
          if (vehicle->empty()) {
            return ErrorReply(Status::NotFound(fmt::format("no vehicle has terminal {}", key)));
          }
          auto stored = supervision_->StorePositions(tx, *vehicle, std::move(in), "jt808");
          if (!stored.ok()) return ErrorReply(stored.status());
          return Reply{};
        });
}

}  // namespace pingma::registry
