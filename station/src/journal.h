// The station's fill journal and outbox (SQLite under data_dir, synchronous=FULL).
//
// A fill is written here before the valve may open (begun), and its record before
// the valve relocks (recorded); a recorded fill stays in the outbox until the
// registry has stored it. After a crash, every begun fill is found again and closed
// as interrupted, so nothing is lost. Thread-safe: one connection behind a mutex
// (a position's write is a few hundred microseconds; there are at most a few
// positions).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pingma/common/status.h"

namespace pingma::station {

/// A fill that was begun: what was known when the valve was about to open.
struct BegunFill {
  std::string event_id;  ///< a UUID, the fill's id at the registry
  std::string position_id;
  std::string record_json;  ///< the fill record so far (API.md POST /v1/fills fields)
};

struct OutboxItem {
  std::string event_id;
  std::string record_json;
  int attempts = 0;
};

struct JournalStats {
  std::int64_t pending = 0;   ///< recorded, not yet stored by the registry
  std::int64_t rejected = 0;  ///< refused by the registry for good (kept, not retried)
  std::int64_t uploaded = 0;
  std::int64_t begun = 0;  ///< open fills (at most one per position)
};

class Journal {
 public:
  /// Opens or creates `path`. kIoError with SQLite's words on failure.
  static Result<std::unique_ptr<Journal>> Open(const std::string& path);
  ~Journal();

  /// Durable before it returns. One begun fill per position: kConflict otherwise.
  Status Begin(const BegunFill& fill);
  /// Replaces the begun fill with its final record and puts it in the outbox, in
  /// one transaction. Durable before it returns.
  Status Record(const std::string& event_id, const std::string& record_json);
  /// The fills begun and never recorded (after a crash), oldest first.
  Result<std::vector<BegunFill>> Unfinished();

  /// Recorded fills not yet stored by the registry, oldest first.
  Result<std::vector<OutboxItem>> Pending(int limit);
  Status MarkUploaded(const std::string& event_id);
  /// Counts a failed try (the registry was unreachable): `error` is kept for status.
  Status MarkAttempt(const std::string& event_id, const std::string& error);
  /// The registry refused it for good: kept, no longer retried, shown in status.
  Status MarkRejected(const std::string& event_id, const std::string& error);
  Result<JournalStats> Stats();

 private:
  struct Impl;
  explicit Journal(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// A random (version 4) UUID from the system's random source, lower case.
std::string NewUuid();

}  // namespace pingma::station
