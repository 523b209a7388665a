// A signed tree head: the text API.md names, signed with the log's Ed25519 key from
// the secrets folder, verified here and by the openssl program (a verifier not
// written here); a head changed in its size, root or time, or another key, fails.
// Stored heads thinned after a week to the first of each hour, and never the newest.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include "access/secrets.h"
#include "store/chain.h"
#include "store/log_rows.h"
#include "store/merkle.h"
#include "test_store.h"

namespace pingma::registry {
namespace {

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  REQUIRE(out.good());
}

/// Whether `openssl pkeyutl -verify` accepts `signature` of `message` by the public
/// half of the PEM private key at `key_pem`.
bool OpensslVerifies(const std::string& dir, const std::string& key_pem, const std::string& message,
                     const std::string& signature) {
  WriteFile(dir + "/message", message);
  WriteFile(dir + "/signature", signature);
  const std::string pub = dir + "/public.pem";
  REQUIRE(std::system(("openssl pkey -in '" + key_pem + "' -pubout -out '" + pub + "'").c_str()) ==
          0);
  const std::string verify = "openssl pkeyutl -verify -pubin -inkey '" + pub + "' -rawin -in '" +
                             dir + "/message' -sigfile '" + dir + "/signature' >/dev/null 2>&1";
  return std::system(verify.c_str()) == 0;
}

TEST_CASE("a tree head's text, signature and verification") {
  TempDb tmp;
  Secrets secrets;
  secrets.dir = tmp.dir + "/secrets";
  REQUIRE(EnsureSigningKey(secrets).ok());
  REQUIRE(secrets.log_public_key.size() == 32);

  merkle::TreeHead head{
      3, merkle::RootOf({merkle::LeafHash("a"), merkle::LeafHash("b"), merkle::LeafHash("c")}),
      1'780'000'000'123};
  const std::string text = merkle::TreeHeadText(head);
  CHECK(text == "pingma-log-v1\n3\n" + HexOf(head.root_hash) + "\n1780000000123\n");
  auto signature = SignWithLogKey(secrets.log_signing_key, text);
  REQUIRE(signature.ok());
  CHECK(signature->size() == 64);
  CHECK(VerifyLogSignature(secrets.log_public_key, text, *signature));
  const std::string key_file = secrets.dir + "/" + kLogSigningKeyFile;
  CHECK(OpensslVerifies(tmp.dir, key_file, text, *signature));

  SUBCASE("a head changed in any part fails") {
    merkle::TreeHead bigger = head, other_root = head, later = head;
    bigger.tree_size = 4;
    other_root.root_hash[31] ^= 1;
    later.timestamp_ms += 1;
    for (const merkle::TreeHead& changed : {bigger, other_root, later}) {
      const std::string changed_text = merkle::TreeHeadText(changed);
      CHECK_FALSE(VerifyLogSignature(secrets.log_public_key, changed_text, *signature));
      CHECK_FALSE(OpensslVerifies(tmp.dir, key_file, changed_text, *signature));
    }
  }
  SUBCASE("a signature changed, or another key, fails") {
    std::string flipped = *signature;
    flipped[0] ^= 1;
    CHECK_FALSE(VerifyLogSignature(secrets.log_public_key, text, flipped));
    CHECK_FALSE(OpensslVerifies(tmp.dir, key_file, text, flipped));
    Secrets other;
    other.dir = tmp.dir + "/other";
    REQUIRE(EnsureSigningKey(other).ok());
    CHECK_FALSE(VerifyLogSignature(other.log_public_key, text, *signature));
  }
  SUBCASE("a key that is not Ed25519 is refused") {
    CHECK(SignWithLogKey("not a key", text).status().code() == StatusCode::kInvalid);
  }
}

/// Stores a head of `size` signed at `at_ms` (its root and signature are not read).
void StoreHead(Store& store, std::int64_t size, std::int64_t at_ms) {
  Reply r = store.Run([&](WriteTx& tx) -> Reply {
    logrows::SignedHead h;
    h.head.tree_size = static_cast<std::uint64_t>(size);
    h.head.root_hash = std::string(32, 'r');
    h.head.timestamp_ms = at_ms;
    h.key_id = "test";
    h.signature = std::string(64, 's');
    Status s = logrows::InsertHead(tx.conn(), h);
    return s.ok() ? Reply{} : ErrorReply(s);
  });
  REQUIRE(!r.failed());
}

/// The sizes of the stored heads.
std::set<std::int64_t> StoredHeads(Store& store) {
  auto stored = store.Read([](Conn& conn) -> Result<std::set<std::int64_t>> {
    std::set<std::int64_t> sizes;
    auto st = conn.Prepare("SELECT tree_size FROM log_heads");
    REQUIRE(st.ok());
    for (;;) {
      auto row = (*st)->Step();
      REQUIRE(row.ok());
      if (!*row) break;
      sizes.insert((*st)->Int(0));
    }
    return sizes;
  });
  REQUIRE(stored.ok());
  return *stored;
}

std::int64_t Thin(Store& store, std::int64_t from_ms, std::int64_t to_ms) {
  std::int64_t deleted = -1;
  Reply r = store.Run([&](WriteTx& tx) -> Reply {
    auto n = logrows::ThinHeads(tx.conn(), from_ms, to_ms);
    if (!n.ok()) return ErrorReply(n.status());
    deleted = *n;
    return Reply{};
  });
  REQUIRE(!r.failed());
  return deleted;
}

TEST_CASE("stored heads: every one of the last week, then the first of each hour") {
  StoreOnTempDb s;
  const Instant now = s.clock.Now();  // 2026-01-01T00:00:00Z, an hour's start
  const std::int64_t before = logrows::ThinHeadsBefore(now);
  CHECK(before == now.unix_ms - logrows::kKeepEveryHeadMs);
  CHECK(logrows::ThinHeadsBefore(Instant{now.unix_ms + logrows::kHourMs - 1}) == before);
  CHECK(logrows::ThinHeadsBefore(Instant{now.unix_ms + logrows::kHourMs}) ==
        before + logrows::kHourMs);
  // Ten days of heads every 15 minutes, and one a millisecond either side of the
  // week's edge.
  constexpr std::int64_t kQuarter = 15 * 60 * 1000;
  std::int64_t size = 0;
  std::set<std::int64_t> kept;
  for (std::int64_t at = now.unix_ms - 10LL * 24 * 3600 * 1000; at < now.unix_ms; at += kQuarter) {
    if (at == before) {
      StoreHead(*s.store, ++size, before - 1);  // the last old hour's: not its first
    }
    StoreHead(*s.store, ++size, at);
    if (at >= before || at % logrows::kHourMs == 0) kept.insert(size);
  }
  const auto all = StoredHeads(*s.store);
  CHECK(all.size() == 10 * 24 * 4 + 1);

  CHECK(Thin(*s.store, 0, before) == static_cast<std::int64_t>(all.size() - kept.size()));
  CHECK(StoredHeads(*s.store) == kept);
  CHECK(kept.size() == 3 * 24 + 7 * 24 * 4);
  CHECK(Thin(*s.store, 0, before) == 0);  // again: nothing more

  SUBCASE("the newest head stays, however old") {
    // Two more hours old enough: three heads of each go, but the newest, which is
    // not its hour's first.
    StoreHead(*s.store, ++size, before + logrows::kHourMs + kQuarter);
    CHECK(Thin(*s.store, before, before + 2 * logrows::kHourMs) == 6);
    const auto left = StoredHeads(*s.store);
    CHECK(left.count(size) == 1);
    CHECK(left.size() == kept.size() - 6 + 1);
  }
}

}  // namespace
}  // namespace pingma::registry
