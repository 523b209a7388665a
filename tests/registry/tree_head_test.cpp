// A signed tree head: the text API.md names, signed with the log's Ed25519 key from
// the secrets folder, verified here and by the openssl program (a verifier not
// written here); a head changed in its size, root or time, or another key, fails.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "access/secrets.h"
#include "store/chain.h"
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

}  // namespace
}  // namespace pingma::registry
