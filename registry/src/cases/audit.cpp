#include "cases/audit.h"

#include "store/log_rows.h"

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
    if (conn.dialect() == sql::Dialect::kSqlite) {
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
    }
    // On PostgreSQL the chain ended where appends stopped taking a lock
    // (schema/pg/0009), at the link it keeps (`chain_end`); the log goes on in the
    // verifiable log's tree, whose newest signed head is the head here.
    auto st = conn.Prepare("SELECT seq, hash FROM chain_head");
    if (!st.ok()) return ErrorReply(st.status());
    auto row = (*st)->Step();
    if (!row.ok()) return ErrorReply(row.status());
    json out = {{"head", nullptr}, {"length", 0}, {"chain_end", nullptr}, {"verified", verified}};
    if (*row && (*st)->Int(0) > 0) {
      out["chain_end"] = {{"length", (*st)->Int(0)}, {"head", HexOf((*st)->Blob(1))}};
    }
    (*st)->Reset();
    auto newest = logrows::NewestHead(conn);
    if (!newest.ok()) return ErrorReply(newest.status());
    if (*newest) {
      out["head"] = HexOf((*newest)->head.root_hash);
      out["length"] = (*newest)->head.tree_size;
    }
    return Okay(out);
  });
}

}  // namespace pingma::registry
