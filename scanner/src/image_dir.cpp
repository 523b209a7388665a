// The image-dir source: photos a camera drops in a folder, each decoded once and
// then moved to done/ or failed/ inside it.
//
// New files are seen through inotify's IN_CLOSE_WRITE and IN_MOVED_TO, so a file is
// read only once its writer has closed it (or renamed it in whole); files already
// in the folder at Start are taken as they are. Decoding takes 10-500 ms, so it runs
// on one worker thread, one file at a time, and the result is posted back to the
// io_context, where the scans are delivered and the file is moved.
#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>

#include "pingma/scanner/image.h"
#include "source_private.h"

namespace pingma {
namespace {

/// Names remembered as ignored (not an image) so that each gets one notice; the
/// set is emptied when it reaches this, which bounds it at worst to a repeat notice.
constexpr std::size_t kMaxIgnoredNames = 1024;
/// Suffixes tried after a name already in done/ or failed/: NAME-1.png ... NAME-9999.png.
constexpr int kMaxNameSuffix = 9999;

bool EndsWithNoCase(std::string_view name, std::string_view suffix) {
  if (name.size() < suffix.size()) return false;
  const std::string_view tail = name.substr(name.size() - suffix.size());
  return std::equal(tail.begin(), tail.end(), suffix.begin(), [](char a, char b) {
    return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
  });
}

bool IsImageName(std::string_view name) {
  return EndsWithNoCase(name, ".png") || EndsWithNoCase(name, ".jpg") ||
         EndsWithNoCase(name, ".jpeg");
}

std::string Errno(int err) {
  return std::strerror(err);
}

/// Makes `path` a folder unless it is one.
Status MakeFolder(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0) return Status::Ok();
  const int err = errno;
  struct stat info {};
  if (err == EEXIST && ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
    return Status::Ok();
  }
  if (err == EEXIST)
    return Status::IoError("cannot make folder " + path + ": a file is in the way");
  return Status::IoError("cannot make folder " + path + ": " + Errno(err));
}

/// Moves `from` to `folder`/`name`, or to NAME-1.EXT, NAME-2.EXT, ... when that
/// name is taken: an earlier photo of the same name is never overwritten. Returns
/// the name it got.
Result<std::string> MoveKeepingOthers(const std::string& from, const std::string& folder,
                                      const std::string& name) {
  const std::size_t dot = name.rfind('.');
  const std::string stem = dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
  const std::string ext = stem.size() == name.size() ? std::string() : name.substr(dot);
  for (int i = 0; i <= kMaxNameSuffix; ++i) {
    const std::string target = i == 0 ? name : stem + "-" + std::to_string(i) + ext;
    const std::string to = folder + "/" + target;
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
      return target;
    }
    int err = errno;
    if (err == EINVAL || err == ENOSYS) {
      // A file system without RENAME_NOREPLACE: a link fails rather than replace.
      if (::link(from.c_str(), to.c_str()) == 0) {
        ::unlink(from.c_str());
        return target;
      }
      err = errno;
    }
    if (err != EEXIST) return Status::IoError(Errno(err));
  }
  return Status::IoError("every name up to " + stem + "-" + std::to_string(kMaxNameSuffix) + ext +
                         " is taken");
}

/// Watches one folder and decodes what lands in it. Used on the io_context's
/// thread, except the decoding, which runs on its own worker thread and touches
/// nothing of the source; owns the inotify descriptor and the worker.
class ImageDirSource final : public SourceBase {
 public:
  ImageDirSource(asio::io_context& io, SourceConfig config, std::shared_ptr<Delivery> delivery)
      : SourceBase(std::move(delivery)), io_(io), dir_(std::move(config.dir)), events_(io) {
    while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  }

  ~ImageDirSource() override {
    Stop();
    if (worker_) {
      // Lets a decode in progress finish (its result is dropped: stopped), and
      // keeps the worker from outliving the io_context it posts to.
      worker_->stop();
      worker_->join();
    }
  }

  Status Start() override {
    if (started_ || delivery_->stopped())
      return Status::Invalid("image-dir " + dir_ + " was already started");
    PINGMA_RETURN_IF_ERROR(MakeFolder(dir_ + "/done"));
    PINGMA_RETURN_IF_ERROR(MakeFolder(dir_ + "/failed"));
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return Status::Unavailable("cannot watch " + dir_ + ": inotify: " + Errno(errno));
    if (::inotify_add_watch(fd, dir_.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR) < 0) {
      const int err = errno;
      ::close(fd);
      return Status::Unavailable("cannot watch " + dir_ + ": " + Errno(err));
    }
    std::error_code ec;
    events_.assign(fd, ec);
    if (ec) {
      ::close(fd);
      return Status::Unavailable("cannot watch " + dir_ + ": " + ec.message());
    }
    try {
      worker_ = std::make_unique<asio::thread_pool>(1);
    } catch (const std::exception& e) {
      events_.close(ec);
      return Status::Unavailable("image-dir " + dir_ +
                                 ": cannot start the decoding thread: " + e.what());
    }
    started_ = true;
    ReadEvents();
    // After the watch is set, so that nothing written meanwhile is missed; a file
    // both listed here and announced by inotify is queued once.
    ScanFolder();
    return Status::Ok();
  }

  void Stop() override {
    if (delivery_->stopped()) return;
    delivery_->Stop();
    std::error_code ignored;
    events_.close(ignored);
    queue_.clear();
  }

  std::string Describe() const override { return dir_; }

 private:
  void ReadEvents() {
    events_.async_read_some(asio::buffer(event_buffer_),
                            [this, d = delivery_](const std::error_code& ec, std::size_t n) {
                              if (d->stopped()) return;
                              if (ec) {
                                d->Warn("image-dir " + dir_ + ": cannot watch for new files (" +
                                        ec.message() + "); no more images will be read");
                                return;
                              }
                              OnEvents(n);
                              if (!d->stopped()) ReadEvents();
                            });
  }

  void OnEvents(std::size_t n) {
    std::size_t pos = 0;
    while (pos + sizeof(inotify_event) <= n) {
      inotify_event event{};
      std::memcpy(&event, event_buffer_.data() + pos, sizeof event);
      const char* name = event_buffer_.data() + pos + sizeof event;
      pos += sizeof event + event.len;
      if (pos > n) break;  // the kernel never splits an event; be safe anyway
      if (event.mask & IN_Q_OVERFLOW) {
        ScanFolder();  // events were lost: look at the folder itself
      } else if (event.mask & IN_IGNORED) {
        delivery_->Warn("image-dir " + dir_ +
                        " was removed or unmounted; no more images will be read");
      } else if (event.len > 0 && !(event.mask & IN_ISDIR)) {
        Consider(std::string(name, ::strnlen(name, event.len)));
      }
    }
  }

  void ScanFolder() {
    DIR* folder = ::opendir(dir_.c_str());
    if (folder == nullptr) {
      delivery_->Warn("image-dir " + dir_ + ": cannot list it: " + Errno(errno));
      return;
    }
    std::vector<std::string> names;
    while (const dirent* entry = ::readdir(folder)) {
      if (entry->d_type == DT_REG || entry->d_type == DT_UNKNOWN || entry->d_type == DT_LNK) {
        names.emplace_back(entry->d_name);
      }
    }
    ::closedir(folder);
    std::sort(names.begin(), names.end());  // oldest first when cameras number them
    for (const std::string& name : names) Consider(name);
  }

  void Consider(const std::string& name) {
    // Hidden names are files still being written under a temporary name.
    if (name.empty() || name[0] == '.') return;
    struct stat info {};
    if (::stat((dir_ + "/" + name).c_str(), &info) != 0 || !S_ISREG(info.st_mode)) return;
    if (!IsImageName(name)) {
      if (ignored_.size() >= kMaxIgnoredNames) ignored_.clear();
      if (ignored_.insert(name).second) {
        delivery_->Info("image-dir " + dir_ + ": leaving " + name +
                        " alone: not a .png, .jpg or .jpeg file");
      }
      return;
    }
    if (!pending_.insert(name).second) return;  // queued or being decoded already
    queue_.push_back(name);
    DecodeNext();
  }

  void DecodeNext() {
    if (busy_ || queue_.empty() || delivery_->stopped()) return;
    busy_ = true;
    std::string name = std::move(queue_.front());
    queue_.pop_front();
    // The job copies what it needs and never touches `this`: the source may be
    // gone by the time it runs (its destructor joins the worker first).
    asio::post(*worker_, [&io = io_, d = delivery_, this_source = this, path = dir_ + "/" + name,
                          name]() mutable {
      Result<ImageScan> result = Status::Internal("not decoded");
      try {
        result = DecodeImageFile(path);
      } catch (const std::exception& e) {
        result = Status::Internal(std::string("decoding threw: ") + e.what());
      } catch (...) {
        result = Status::Internal("decoding threw");
      }
      asio::post(io, [d, this_source, name = std::move(name), result = std::move(result)]() {
        if (d->stopped()) return;  // the source may be gone: touch nothing
        this_source->OnDecoded(name, result);
      });
    });
  }

  void OnDecoded(const std::string& name, const Result<ImageScan>& result) {
    busy_ = false;
    pending_.erase(name);
    const char* folder = "failed";
    if (!result.ok()) {
      if (result.status().code() == StatusCode::kNotFound) {
        delivery_->Warn("image " + name + " in " + dir_ + " went away before it was read");
        DecodeNext();
        return;
      }
      delivery_->Warn("image " + name + " could not be read: " + result.status().message());
    } else if (result->symbols.empty()) {
      delivery_->Warn("image " + name + " (" + result->format + " " +
                      std::to_string(result->width) + "x" + std::to_string(result->height) +
                      "): no readable code in it");
    } else {
      folder = "done";
      // A scan handler may stop or even destroy this source: from here on only
      // these copies are used until `d` says it is still running.
      const std::shared_ptr<Delivery> d = delivery_;
      const std::string dir = dir_;
      const auto now = ScanDedup::Clock::now();
      Scan scan;
      scan.origin = name;
      for (const DecodedSymbol& symbol : result->symbols) {
        scan.symbology = symbol.symbology;
        d->Deliver(symbol.text, scan, now);
      }
      if (d->stopped()) {
        // Its scans were delivered: it must not be read again at the next start.
        static_cast<void>(MoveKeepingOthers(dir + "/" + name, dir + "/" + folder, name));
        return;
      }
    }
    Result<std::string> moved = MoveKeepingOthers(dir_ + "/" + name, dir_ + "/" + folder, name);
    if (!moved.ok()) {
      delivery_->Warn("image " + name + ": cannot move it to " + folder +
                      "/: " + moved.status().message());
    }
    DecodeNext();
  }

  asio::io_context& io_;
  std::string dir_;
  asio::posix::stream_descriptor events_;  // the inotify descriptor
  std::unique_ptr<asio::thread_pool> worker_;
  std::deque<std::string> queue_;  // names waiting for the worker, in arrival order
  std::set<std::string> pending_;  // names queued or being decoded
  std::set<std::string> ignored_;  // names already reported as not images
  bool busy_ = false;              // a decode is on the worker
  bool started_ = false;
  alignas(inotify_event) std::array<char, 16 * 1024> event_buffer_{};
};

}  // namespace

std::unique_ptr<ScanSource> MakeImageDirSource(asio::io_context& io, SourceConfig config,
                                               std::shared_ptr<Delivery> delivery) {
  return std::make_unique<ImageDirSource>(io, std::move(config), std::move(delivery));
}

}  // namespace pingma
