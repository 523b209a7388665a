// The JT/T 808 gateway: a TCP server that takes in-vehicle terminals (registration,
// authentication, heartbeat, logout, location reports and batches) and answers
// them with the platform's replies, against a TerminalDirectory the registry
// implements. The wire form is codec.h's.
//
// Threading: the gateway runs its own Asio io_context on one thread of its own
// (Start to Stop); every connection's reads, writes, timers and state live on that
// thread, which is therefore each connection's strand. The directory's callbacks
// may come on any thread: each is posted back onto the gateway's thread, and one
// that comes after its connection closed, or after Stop, is dropped. Start, Stop,
// port and counters may be called from any thread but the gateway's own (a notice
// callback must not call Stop). The gateway writes nothing on stdout.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "jt808/codec.h"
#include "pingma/common/status.h"

namespace pingma::registry::jt808 {

/// What the gateway asks of the registry about terminals. Implemented by the
/// registry (over its store); callbacks may come on any thread, possibly inside the
/// call itself, and each `done` must be called exactly once. Phones are passed as
/// the terminal sent them: look them up by NormalizePhone (codec.h). The methods
/// must not throw.
class TerminalDirectory {
 public:
  virtual ~TerminalDirectory() = default;

  using RegisterDone = std::function<void(RegistrationResult result, std::string auth_code)>;
  using AuthenticateDone = std::function<void(bool ok)>;
  using StoreDone = std::function<void(bool stored)>;

  /// A 0x0100 registration. kOk comes with the auth code the terminal is to present
  /// in its 0x0102; the other results are 0x8100's. kNoSuchVehicle and
  /// kNoSuchTerminal refuse the terminal (its connection is closed after the reply).
  virtual void Register(const Registration& registration, RegisterDone done) = 0;

  /// A 0x0102 authentication (the 2019 edition's IMEI and software version included).
  /// false refuses the terminal: 0x8001 result 1, then its connection is closed.
  virtual void Authenticate(const Authentication& authentication, AuthenticateDone done) = 0;

  /// Positions of an authenticated terminal, in the order it sent them (one for a
  /// 0x0200, a batch's for a 0x0704). done(true) only once they are durably stored:
  /// only then does the terminal get its 0x8001 result 0 (done(false): result 1,
  /// and the terminal sends them again). A terminal that sends again what was
  /// stored but not acknowledged (its connection gone meanwhile) repeats positions.
  virtual void StorePositions(const std::string& phone, std::vector<Location> positions,
                              StoreDone done) = 0;
};

/// A gateway's settings. Per connection, memory is bounded by read_chunk_bytes (the
/// read buffer, and the frames cut from one read), kMaxFrame (a frame in progress),
/// max_packages * kMaxBody (a message in sub-packages) and max_write_bytes (replies
/// not yet taken by the terminal): about 40 KiB with the defaults.
struct GatewayOptions {
  /// Where to listen: an IP address (an IPv6 one with or without brackets) or a
  /// name, resolved once at Start; port 0 picks a free one (Gateway::port says which).
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  /// A connection not authenticated (0x0102 accepted) this long after it opened is
  /// closed.
  std::chrono::milliseconds auth_timeout{60'000};
  /// A connection that sends no frame (good or bad) this long is closed: three of
  /// the usual 60 s heartbeats.
  std::chrono::milliseconds idle_timeout{180'000};
  /// Connections open at once; one more is closed as soon as it is accepted.
  std::size_t max_connections = 1024;
  /// A connection that sends more bad frames than this within a minute is closed.
  /// Each is dropped with a notice before that, so a stream of garbage costs its own
  /// connection only (and at most this many notices a minute).
  std::size_t max_bad_frames_per_minute = 10;
  /// Bytes asked of the socket per read: no connection holds the gateway's thread
  /// for more than one read's frames at a time.
  std::size_t read_chunk_bytes = 4096;
  /// Replies queued for a terminal that does not read them; past this its
  /// connection is closed.
  std::size_t max_write_bytes = 16 * 1024;
  /// A message in sub-packages: at most this many packages (up to 64), whole within
  /// package_timeout of its first, or it is dropped.
  std::size_t max_packages = 16;
  std::chrono::milliseconds package_timeout{60'000};
  /// Where notices go (one line each, without a newline), on the gateway's thread.
  /// Empty: stderr, as "pingma-registry: jt808 ...", as the registry's other notices.
  std::function<void(const std::string&)> notice;
};

/// What a gateway has done since Start, for metrics.
struct GatewayCounters {
  std::uint64_t connections = 0;             ///< accepted
  std::uint64_t connections_open = 0;        ///< open now
  std::uint64_t connections_over_limit = 0;  ///< closed at once: max_connections were open
  std::uint64_t frames = 0;                  ///< frames read, good or bad
  std::uint64_t bad_frames = 0;              ///< dropped: framing, check code, header or body
  std::uint64_t positions_stored = 0;        ///< positions the directory stored
  std::uint64_t refused = 0;           ///< terminals refused: unknown, or authentication failed
  std::uint64_t closed_by_limits = 0;  ///< closed by a timeout, the bad frames or the write queue
};

class Gateway {
 public:
  /// `directory` must outlive the gateway.
  Gateway(TerminalDirectory& directory, GatewayOptions options);
  /// Stops it.
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  /// Binds and listens, then serves on the gateway's own thread. Unavailable when
  /// the address cannot be bound; Invalid when the host does not resolve. Once only,
  /// and not after Stop.
  Status Start();
  /// Closes the listener and every connection (replies not yet written are lost)
  /// and joins the gateway's thread. Directory callbacks still to come are dropped.
  /// Idempotent.
  void Stop();

  /// The port listened on (the one picked, for port 0); 0 before Start.
  std::uint16_t port() const;
  GatewayCounters counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pingma::registry::jt808
