// A cylinder's history through the use case, across the partitions of the log's
// per-code index (kEventBucketBits): every event of the code, in order, once,
// whatever the page size and wherever the partition boundaries fall.
#include <doctest/doctest.h>

#include <future>
#include <string>
#include <vector>

#include "service.h"
#include "test_store.h"

namespace pingma::registry {
namespace {

Reply Get(Service& service, const std::string& token, const std::string& target) {
  std::promise<Reply> promise;
  auto future = promise.get_future();
  service.Handle({"GET", target, "Bearer " + token, ""},
                 [&promise](Reply r) { promise.set_value(std::move(r)); });
  return future.get();
}

TEST_CASE_FIXTURE(StoreOnTempDb, "history pages walk every partition of the index, in order") {
  constexpr std::int64_t kPartition = std::int64_t{1} << kEventBucketBits;
  Service service(store.get(), Policy::Defaults(), &clock);
  const std::string admin = *service.AddToken(Role::kAdmin, "root");  // event 1

  // Events of HB-H at both sides of the first two partition boundaries, at the
  // start and the end, among events of another code; an empty partition between.
  const std::vector<std::int64_t> wanted = {2,
                                            kPartition - 1,
                                            kPartition,
                                            kPartition + 1,
                                            2 * kPartition - 1,
                                            2 * kPartition,
                                            4 * kPartition + 7};
  const std::int64_t total = wanted.back() + 3;
  Reply appended = store->Run([&](WriteTx& tx) -> Reply {
    size_t next = 0;
    for (std::int64_t seq = 2; seq <= total; ++seq) {
      const bool mine = next < wanted.size() && wanted[next] == seq;
      if (mine) ++next;
      const std::string code = mine ? "HB-H" : "HB-OTHER";
      auto done = tx.Append({"", code, "test", tx.now(), "admin", "root", "{}"});
      if (!done.ok() || *done != seq) return ErrorReply(Status::Internal("unexpected sequence"));
    }
    return Reply{};
  });
  REQUIRE(!appended.failed());

  for (int limit : {1, 2, 3, 7, 1000}) {
    CAPTURE(limit);
    std::vector<std::int64_t> seen;
    std::string cursor;
    for (int page = 0; page < 20; ++page) {
      std::string target = "/v1/cylinders/HB-H/history?limit=" + std::to_string(limit);
      if (!cursor.empty()) target += "&cursor=" + cursor;
      Reply r = Get(service, admin, target);
      REQUIRE_MESSAGE(r.status == 200, r.body.dump());
      for (const json& ev : r.body["events"]) seen.push_back(ev["seq"].get<std::int64_t>());
      if (r.body["next_cursor"].is_null()) break;
      cursor = r.body["next_cursor"].get<std::string>();
    }
    CHECK(seen == wanted);
  }
  store->Close();
}

}  // namespace
}  // namespace pingma::registry
