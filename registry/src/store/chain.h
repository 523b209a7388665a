// The log's hash chain: each event's link is the SHA-256 of the link before it
// and of the event's fields, length-prefixed, so that no event can be changed,
// dropped or put out of order without breaking every link after it. The writer
// extends it (WriteTx::Append, store.h); WalkChain checks it end to end, on
// either store.
//
// Thread-safety: every function may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "pingma/common/status.h"

namespace pingma::registry {

struct Event;  // store.h

/// The SHA-256 digest of `bytes` (32 raw bytes).
std::string Sha256(std::string_view bytes);

/// SHA-256 over the previous link and the event's fields, length-prefixed.
std::string ChainHash(const std::string& prev_hash, std::int64_t seq, const Event& event);

/// Lower-case hex of raw bytes (a hash as the API shows it).
std::string HexOf(std::string_view bytes);

/// How far a walk of the chain got: its length and last link.
struct ChainWalk {
  std::int64_t length = 0;
  std::string head;  ///< the last event's hash (32 raw bytes); empty for an empty log
};

/// Recomputes the hash chain of the database at `path` (a SQLite file, or a
/// PostgreSQL connection string), and in the same pass the verifiable log's tree
/// and every signed head (log_rows.h, TreeCheck). OK with a summary
/// ("ok: 1234 events, chain intact; tree of …") or Corruption naming the first
/// event, tile or head that does not hold.
Result<std::string> VerifyChain(const std::string& path);

/// VerifyChain's walk, over the events committed when it starts, read a page at a
/// time (on PostgreSQL streamed row by row), so that its memory does not grow
/// with the log. With `cancel`, it stops with Unavailable once *cancel is true
/// (a server shutting down).
Result<ChainWalk> WalkChain(const std::string& path, const std::atomic<bool>* cancel = nullptr);

}  // namespace pingma::registry
