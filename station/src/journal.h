// The station's fill journal and outbox (SQLite under data_dir, synchronous=FULL).
//
// A fill is written here before the valve may open (begun), and its record before
// the valve relocks (recorded); a recorded fill stays in the outbox until the
// registry has stored it. After a crash, every begun fill is found again and closed
// as interrupted, so nothing is lost. A fill check decided on the replica (the
// registry unreachable) is written here before the operator sees it, and stays in
// the outbox of checks until the registry has it (POST /v1/fill-checks/offline). Thread-safe: one
// connection behind a mutex (a position's write is a few hundred microseconds; there are at most a
// few positions).
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

/// The two outboxes: fill records (POST /v1/fills) and checks decided offline
/// (POST /v1/fill-checks/offline). Each is uploaded oldest first, exactly once.
enum class Outbox { kFills, kChecks };

struct OutboxItem {
  std::string event_id;  ///< a fill's event_id, or an offline check's check_id
  std::string record_json;
  int attempts = 0;
};

struct JournalStats {
  std::int64_t pending = 0;   ///< recorded, not yet stored by the registry
  std::int64_t rejected = 0;  ///< refused by the registry for good (kept, not retried)
  std::int64_t uploaded = 0;
  std::int64_t begun = 0;           ///< open fills (at most one per position)
  std::int64_t checks_pending = 0;  ///< offline checks the registry does not have yet
  std::int64_t checks_rejected = 0;
  std::int64_t checks_uploaded = 0;
  /// When the oldest record still waiting (fill or check) was written, Unix ms; 0: none.
  std::int64_t oldest_pending_ms = 0;
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

  /// Puts a check decided on the replica in the outbox of checks, `check_id` being
  /// the station's UUID for it. Durable before it returns; the same id twice is
  /// kConflict.
  Status RecordOfflineCheck(const std::string& check_id, const std::string& record_json);

  /// Records not yet stored by the registry, oldest first.
  Result<std::vector<OutboxItem>> Pending(int limit, Outbox which = Outbox::kFills);
  Status MarkUploaded(const std::string& id, Outbox which = Outbox::kFills);
  /// Counts a failed try (the registry was unreachable): `error` is kept for status.
  Status MarkAttempt(const std::string& id, const std::string& error,
                     Outbox which = Outbox::kFills);
  /// The registry refused it for good: kept, no longer retried, shown in status.
  Status MarkRejected(const std::string& id, const std::string& error,
                      Outbox which = Outbox::kFills);
  Result<JournalStats> Stats();
  /// Where record `id` stands: "begun", "pending", "uploaded" or "rejected"; kNotFound.
  Result<std::string> StateOf(const std::string& id, Outbox which = Outbox::kFills);

 private:
  struct Impl;
  explicit Journal(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// A random (version 4) UUID from the system's random source, lower case.
std::string NewUuid();

}  // namespace pingma::station
