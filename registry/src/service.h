// The registry's house, assembled: the router (http/router.h) with its route
// table, and one room per use case (cases/), each owning its state. Handle is the
// one entry point; nothing here knows about sockets or the HTTP library, so
// process-free tests drive it directly.
//
// Thread-safety: Handle may be called from many threads at once; writes are
// serialised by the Store's writer thread.
#pragma once

#include <string>

#include "access/tokens.h"
#include "cases/audit.h"
#include "cases/cylinders.h"
#include "cases/epcis.h"
#include "cases/fill_checks.h"
#include "cases/fleet.h"
#include "cases/handovers.h"
#include "cases/inspections.h"
#include "cases/pages.h"
#include "cases/personal_data.h"
#include "cases/public_page.h"
#include "cases/queries.h"
#include "cases/regulator.h"
#include "cases/setup.h"
#include "cases/supervision.h"
#include "cases/terminals.h"
#include "cases/token_admin.h"
#include "cases/verifiable_log.h"
#include "http/router.h"
#include "pingma/common/policy.h"
#include "store/store.h"

namespace pingma::registry {

class Service {
 public:
  Service(Store* store, Policy policy, const Clock* clock);

  /// How many cylinders fill checks keep in memory; before the first request.
  void set_max_cached_cylinders(size_t n) { fill_checks_.set_max_cached_cylinders(n); }

  /// Answers one request. `done` is called exactly once, possibly on another
  /// thread: for writes only after the data is committed and durable, for reads
  /// only once every commit they could have seen is (Store::WhenDurable). The
  /// request is taken by value so that a use case may keep its body (a photo
  /// waiting for a decoder) without a copy.
  void Handle(Request request, Store::Done done) {
    router_.Handle(std::move(request), std::move(done));
  }

  /// Where each answer is counted (serve --metrics-listen); before the first request.
  void set_metrics(Metrics* metrics) { router_.set_metrics(metrics); }

  /// The most body bytes a request may send, before its body is read
  /// (Router::BodyLimit). Any thread.
  size_t BodyLimit(std::string_view method, std::string_view target, std::string_view authorization,
                   const std::string& client) {
    return router_.BodyLimit(method, target, authorization, client);
  }

  /// Issues a token (by the command line: actor admin "cli"); only the SHA-256 of
  /// its secret is stored.
  Result<IssuedToken> IssueToken(const TokenTerms& terms) { return tokens_.IssueNow(terms); }
  /// IssueToken for a role and subject, without an end; returns the bearer token.
  Result<std::string> AddToken(Role role, const std::string& subject);
  /// Writes the tokens' last uses not yet written (also done when the store closes).
  void FlushTokenUse() { tokens_.FlushUse(); }

  const Policy& policy() const { return policy_; }
  /// What the JT/T 808 gateway asks about terminals (jt808/gateway.h).
  Terminals& terminals() { return terminals_; }

  /// The key of the customers' phone and ID hashes (access/secrets.h), before the
  /// first request; without one, customers cannot be registered or found by phone.
  void set_customer_hash_key(std::string key) { settings_.customer_hash_key = std::move(key); }
  /// The complaint line the public page shows; before the first request.
  void set_hotline(std::string hotline) { settings_.hotline = std::move(hotline); }
  /// Where the labels' QR codes point ("https://host", no trailing slash): the
  /// EPCIS export names a cylinder without a GRAI by {public_base}/c/{code}.
  void set_public_base(std::string base) { settings_.public_base = std::move(base); }
  /// The console map's tiles (ParseMapTiles, cases/pages.h); before the first request.
  void set_map_tiles(const MapTiles& tiles) {
    settings_.map_tiles = tiles.url_template;
    settings_.map_tiles_origin = tiles.origin;
    settings_.map_tiles_datum = tiles.datum;
  }

  /// The verifiable log's signing key (access/secrets.h: the PEM and the raw
  /// public key), before StartLog.
  void set_log_keys(std::string signing_key_pem, std::string public_key) {
    settings_.log_signing_key = std::move(signing_key_pem);
    settings_.log_public_key = std::move(public_key);
  }
  /// Starts the log's sequencer (cases/verifiable_log.h); StopLog ends it, before
  /// the store closes.
  void StartLog() { verifiable_log_.StartSequencer(); }
  void StopLog() { verifiable_log_.StopSequencer(); }

  /// What the last full walk of the hash chain found, for GET /v1/audit/head. Any
  /// thread.
  void SetChainCheck(json check) { audit_.SetChainCheck(std::move(check)); }

 private:
  /// The route table: every endpoint of API.md, the roles that may call it, its
  /// body limit and the room that answers it.
  void AddRoutes();

  Policy policy_;
  Settings settings_;
  BearerTokens tokens_;  ///< who each request speaks for
  Router router_;
  Context context_;

  // The rooms. Fill checks first: set-up tells it when its facts change.
  FillChecks fill_checks_;
  Setup setup_;
  TokenAdmin token_admin_;
  Cylinders cylinders_;
  Inspections inspections_;
  FleetFeed fleet_;
  Supervision supervision_;
  Terminals terminals_;
  Handovers handovers_;
  RegulatorReads regulator_;
  EpcisExport epcis_;
  PersonalData personal_data_;
  Audit audit_;
  VerifiableLog verifiable_log_;
  PublicPage public_page_;
  /// Last, so that it goes first: its decoding workers use the store.
  Pages pages_;
};

}  // namespace pingma::registry
