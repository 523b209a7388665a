// The verifiable log (API.md "The verifiable log"): every event a leaf of a
// Merkle tree (RFC 9162), kept in tiles (store/log_tree.h); the sequencer that
// integrates the events committed since its last round into the tree and signs
// its head with the log's Ed25519 key; and the answers an auditor checks the log
// with — the key, the newest head, the entries, inclusion and consistency proofs.
//
// The sequencer is a thread of its own that runs its rounds as jobs on the
// store's writer, every 250 ms while there are new events: a round, its tiles
// and its head commit with the batch they run in, or not at all, so that the
// tree in the store always is the tree of the events before its newest head. On
// a store made before the log (or one `migrate` filled), the first rounds build
// the tree from the events already there, 20,000 a round, saying how far they
// are. On PostgreSQL one registry of those on a database sequences: the one that
// holds the store's lead (Store::LeadLog); the others ask every 250 ms and one
// takes over once the holder's connection ends. Each round reads the newest
// head's size from the store, so that what another registry signed is taken up,
// never overwritten.
//
// Threading: the handlers from any thread; StartSequencer and StopSequencer from
// one (serve's).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "cases/use_case.h"
#include "store/log_rows.h"
#include "store/log_tree.h"

namespace pingma::registry {

class VerifiableLog final : public UseCase {
 public:
  using UseCase::UseCase;
  ~VerifiableLog() { StopSequencer(); }

  /// Starts the sequencer, with the signing key of the settings (serve).
  void StartSequencer();
  /// Ends it after its round in progress; idempotent.
  void StopSequencer();

  /// GET /v1/log/key and GET /v1/log/head, without a token.
  void GetKey(Store::Done done);
  void GetHead(Store::Done done);
  void GetEntries(const Call& call, Store::Done done);
  void GetInclusionProof(const Call& call, Store::Done done);
  void GetConsistencyProof(const Call& call, Store::Done done);

  /// Where the event of `seq` is in the log, for a history or the public page:
  /// {"log_index", "signed_head": {"tree_size", "timestamp"} or null while no
  /// signed head holds it yet}.
  static Result<json> WhereLogged(Conn& conn, std::int64_t seq);
  /// The seq of the cylinder's newest event; nullopt when it has none.
  static Result<std::optional<std::int64_t>> LastEventOf(Conn& conn, const std::string& code);

  /// Events a round integrates at most.
  static constexpr std::int64_t kRoundEvents = 20000;

  /// A round's step on PostgreSQL, where registries commit at once and their
  /// events' numbers are not in commit order: gives the next leaves, after
  /// `next`'s, to at most `most` events committed below the horizon (HorizonSql:
  /// every event that can still commit comes after them), in the order of their
  /// revisions, then numbers; appends them to `next`; how many.
  static Result<std::int64_t> SequenceNew(Conn& conn, std::int64_t most, logtree::Frontier* next);

 private:
  void Loop();
  /// One round: integrates up to kRoundEvents new events and signs the new head.
  /// How many events it added.
  Result<std::int64_t> Round();

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  ///< under mu_
  std::thread thread_;
  // The sequencer thread's.
  logtree::Frontier frontier_;
  bool key_kept_ = false;
  std::int64_t heads_thinned_to_ = 0;  ///< heads signed before this are thinned (Unix ms)

  /// The nodes above the tiles of leaves, for the proofs (log_tree.h).
  logtree::NodeCache nodes_;
};

}  // namespace pingma::registry
