// pingma-bench-floor: the floor under the fill-check benchmark, what any server
// costs that stores one durable row per request on this machine. The same RESTinio
// set-up as pingma-registry and pingma-bench-bare; each request's body is appended
// as one row to a SQLite table in WAL mode by one writer thread that commits in
// batches, and answered with the fixed JSON of the bare handler only once an
// fdatasync of the WAL has covered its commit, as the registry answers a fill check.
// Nothing else: no parsing, authentication, rules, hash chain or index.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <restinio/all.hpp>

#include "baseline_server.h"

namespace {

using Requests = std::vector<restinio::request_handle_t>;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "pingma-bench-floor: %s\n", what.c_str());
  std::exit(1);
}

void Exec(sqlite3* db, const char* sql) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    Fail(std::string(sql) + ": " + sqlite3_errmsg(db));
  }
}

// The writer and the syncer, each a thread fed by a queue.
class DurableAppender {
 public:
  DurableAppender(const std::string& path, bool sync, asio::io_context& io) : sync_(sync), io_(io) {
    ::unlink(path.c_str());
    ::unlink((path + "-wal").c_str());
    ::unlink((path + "-shm").c_str());
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) Fail("cannot open " + path);
    Exec(db_, "PRAGMA journal_mode=WAL");
    // NORMAL syncs only at checkpoints; the syncer's fdatasync of the WAL after each
    // commit makes every commit durable, as FULL would, off the writer.
    Exec(db_, "PRAGMA synchronous=NORMAL");
    Exec(db_, "CREATE TABLE log(seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, body TEXT NOT NULL)");
    wal_fd_ = ::open((path + "-wal").c_str(), O_RDWR | O_CLOEXEC);
    if (wal_fd_ < 0) Fail("cannot open the WAL of " + path);
    if (sqlite3_prepare_v2(db_, "INSERT INTO log(at, body) VALUES(?, ?)", -1, &insert_, nullptr) !=
        SQLITE_OK) {
      Fail(sqlite3_errmsg(db_));
    }
    writer_ = std::thread([this] { WriterLoop(); });
    syncer_ = std::thread([this] { SyncerLoop(); });
  }

  ~DurableAppender() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    work_.notify_all();
    synced_.notify_all();
    writer_.join();
    syncer_.join();
    sqlite3_finalize(insert_);
    sqlite3_close(db_);
    ::close(wal_fd_);
    std::fprintf(stderr,
                 "pingma-bench-floor: stopped; %ld rows in %ld commits, %ld fdatasyncs of "
                 "%.2f ms on average\n",
                 rows_, commits_, syncs_, syncs_ ? sync_ms_ / static_cast<double>(syncs_) : 0.0);
  }

  void Submit(restinio::request_handle_t req) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      incoming_.push_back(std::move(req));
    }
    work_.notify_one();
  }

 private:
  void WriterLoop() {
    for (;;) {
      Requests batch;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_.wait(lock, [this] { return stopping_ || !incoming_.empty(); });
        if (stopping_) return;
        batch.swap(incoming_);
      }
      const auto now = std::chrono::system_clock::now().time_since_epoch();
      Exec(db_, "BEGIN");
      for (const auto& req : batch) {
        const std::string& body = req->body();
        sqlite3_bind_int64(insert_, 1,
                           std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
        sqlite3_bind_text(insert_, 2, body.data(), static_cast<int>(body.size()), SQLITE_STATIC);
        if (sqlite3_step(insert_) != SQLITE_DONE) Fail(sqlite3_errmsg(db_));
        sqlite3_reset(insert_);
      }
      Exec(db_, "COMMIT");
      std::lock_guard<std::mutex> lock(mu_);
      rows_ += static_cast<long>(batch.size());
      ++commits_;
      committed_.push_back(std::move(batch));
      synced_.notify_one();
    }
  }

  void SyncerLoop() {
    for (;;) {
      std::deque<Requests> batches;
      {
        std::unique_lock<std::mutex> lock(mu_);
        synced_.wait(lock, [this] { return stopping_ || !committed_.empty(); });
        if (stopping_) return;
        batches.swap(committed_);
      }
      if (sync_) {
        const auto start = std::chrono::steady_clock::now();
        if (::fdatasync(wal_fd_) != 0) Fail("fdatasync failed");
        const std::chrono::duration<double, std::milli> took =
            std::chrono::steady_clock::now() - start;
        std::lock_guard<std::mutex> lock(mu_);
        ++syncs_;
        sync_ms_ += took.count();
      }
      // All the answers in one hand-over, as the registry's syncers do.
      asio::post(io_, [batches = std::move(batches)] {
        for (const Requests& batch : batches) {
          for (const auto& req : batch) pingma::bench::AnswerFixed(req);
        }
      });
    }
  }

  const bool sync_;
  asio::io_context& io_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  int wal_fd_ = -1;
  std::mutex mu_;
  std::condition_variable work_, synced_;
  bool stopping_ = false;
  Requests incoming_;
  std::deque<Requests> committed_;
  long rows_ = 0, commits_ = 0, syncs_ = 0;
  double sync_ms_ = 0;
  std::thread writer_, syncer_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "pingma-bench-floor: each request appended durably to SQLite, then answered with "
      "fixed JSON (the floor of the fill-check benchmark)"};
  std::string db_path, host = "127.0.0.1";
  std::uint16_t port = 0;
  // The registry's default (serve --threads): one per core, at least two.
  unsigned threads = std::max(2u, std::thread::hardware_concurrency());
  bool no_sync = false;
  app.add_option("--db", db_path, "database file (replaced)")->required();
  app.add_option("--host", host, "address to listen on")->capture_default_str();
  app.add_option("--port", port, "port; 0 picks one")->capture_default_str();
  app.add_option("--threads", threads, "worker threads")->capture_default_str();
  app.add_flag("--no-sync", no_sync,
               "answer once committed, without the fdatasync: what the disk's wait costs");
  CLI11_PARSE(app, argc, argv);

  asio::io_context io;
  DurableAppender appender(db_path, !no_sync, io);
  pingma::bench::Serve(io, host, port, threads, [&appender](restinio::request_handle_t req) {
    appender.Submit(std::move(req));
    return restinio::request_accepted();
  });
  return 0;
}
