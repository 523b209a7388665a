// A SQLite VFS for the registry's writing connection that sends each commit's WAL
// frames to the file in one write, instead of two writes per page.
//
// It wraps the platform's VFS ("unix"). For the WAL file only, writes that follow
// one another in the file are gathered in memory and written out together when
// SQLite next does anything else with the file: at the latest at the sync of the
// WAL that synchronous=FULL does at every commit, which comes after the commit's
// frames are written and before the commit is published to other connections (in
// the WAL index). Readers therefore never see a frame that is not in the file.
//
// Inside a CommitWithoutSync scope the commit's sync of the WAL is only that
// write-out: the caller makes the commit durable itself, later and off the
// writing thread (Store's syncers, which fdatasync the WAL before any reply).
// What reaches the disk, and in which order, is then what synchronous=NORMAL
// writes, which SQLite keeps consistent after power loss. Every other sync stays
// a real one: checkpoints (run outside the scope) and the WAL header after a
// restart of the WAL, which SQLite syncs even under NORMAL.
#pragma once

#include "pingma/common/status.h"

namespace pingma::sql {

/// The VFS's name, for sqlite3_open_v2. Registered by RegisterWalVfs.
inline constexpr const char* kWalVfsName = "pingma-wal";

/// Registers the VFS (not as the default); idempotent and thread-safe.
Status RegisterWalVfs();

/// While one is alive on a thread, the WAL syncs of commits made on that thread
/// write the WAL out but do not wait for the disk (see above). Only for a
/// connection opened with kWalVfsName and synchronous=FULL, whose commits are
/// made durable by other means before anyone is told of them.
class CommitWithoutSync {
 public:
  CommitWithoutSync();
  ~CommitWithoutSync();
  CommitWithoutSync(const CommitWithoutSync&) = delete;
  CommitWithoutSync& operator=(const CommitWithoutSync&) = delete;
};

/// Counters of the VFS, over the whole process.
struct WalVfsStats {
  long long frames_written = 0;  ///< xWrite calls on WAL files
  long long writes_out = 0;      ///< writes that reached the file
  long long syncs_skipped = 0;   ///< commit syncs left to the caller
  long long syncs_done = 0;      ///< real syncs of WAL files
};
WalVfsStats GetWalVfsStats();

}  // namespace pingma::sql
