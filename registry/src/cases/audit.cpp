#include "cases/audit.h"

namespace pingma::registry {

void Audit::GetAuditHead(const Call&, Store::Done done) {
  json verified;
  {
    std::lock_guard<std::mutex> lock(mu_);
    verified = chain_check_;
  }
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    // The last link, by the primary key: one lookup however long the log. Its seq
    // is the chain's length, as the chain starts at 1 without gaps (verify checks).
    auto st = conn.Prepare("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1");
    if (!st.ok()) return ErrorReply(st.status());
    auto row = (*st)->Step();
    if (!row.ok()) return ErrorReply(row.status());
    json out = {{"head", nullptr}, {"length", 0}, {"verified", verified}};
    if (*row) {
      out["head"] = HexOf((*st)->Blob(1));
      out["length"] = (*st)->Int(0);
    }
    return Okay(out);
  });
}

}  // namespace pingma::registry
