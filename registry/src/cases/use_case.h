// What every use case (one room of cases/) is given: the store, the policy, the
// clock and the site's settings, with the two ways it answers — a write job run
// on the store's writer and answered after commit, or a read on a pooled
// connection answered at once. Routing, tokens, roles and limits are the router's
// (http/router.h): a use case's handlers receive a Call already past them.
#pragma once

#include <functional>
#include <string>

#include "http/router.h"
#include "pingma/common/policy.h"
#include "store/store.h"

namespace pingma::registry {

/// What a site sets before the first request (Service's setters).
struct Settings {
  std::string customer_hash_key;  ///< empty: none given (access/secrets.h)
  std::string hotline = "12315";  ///< 全国12315 market-regulation complaint line
  std::string public_base = "https://pingma.example";  ///< pingma-label's default --base
  /// The console map's tiles (serve --map-tiles): the URL template, its origin
  /// (which the console's CSP lets images come from) and their datum, "wgs84" or
  /// "gcj02"; an empty template: no tiles.
  std::string map_tiles;
  std::string map_tiles_origin;
  std::string map_tiles_datum = "wgs84";
  /// The verifiable log's Ed25519 key (access/secrets.h): the private key, PKCS#8
  /// PEM, and the public key's 32 raw bytes; empty: no sequencer runs here.
  std::string log_signing_key;
  std::string log_public_key;
};

/// The shared pieces every use case works with; they outlive it.
struct Context {
  Store* store;
  const Policy* policy;
  const Clock* clock;
  const Settings* settings;
};

class UseCase {
 public:
  explicit UseCase(const Context& context)
      : store_(context.store),
        policy_(*context.policy),
        clock_(context.clock),
        settings_(*context.settings) {}
  UseCase(const UseCase&) = delete;
  UseCase& operator=(const UseCase&) = delete;

  /// A route's handler that calls `method` on `self`.
  template <typename T>
  static Handler On(T* self, void (T::*method)(const Call&, Store::Done)) {
    return [self, method](const Call& call, Store::Done done) {
      (self->*method)(call, std::move(done));
    };
  }

 protected:
  ~UseCase() = default;

  /// Runs a write job; the reply reaches `done` after commit.
  void Write(Store::Done done, Store::Job job) { store_->Submit(std::move(job), std::move(done)); }
  /// Runs a read on a pooled connection and answers at once.
  void ReadReply(Store::Done done, const std::function<Reply(Conn&)>& fn) {
    auto reply = store_->Read([&](Conn& conn) -> Result<Reply> { return fn(conn); });
    done(reply.ok() ? std::move(*reply) : ErrorReply(reply.status()));
  }

  Store* store_;
  const Policy& policy_;
  const Clock* clock_;
  const Settings& settings_;
};

}  // namespace pingma::registry
