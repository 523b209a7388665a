// pingma-bench-jt808-swarm: many JT/T 808 terminals (车载终端) at once, the load of the
// jt808 benchmark; the C++ counterpart of `jt808_terminal.py swarm`, with its command
// line and its one JSON line of totals.
//
// Written from the standard (JT/T 808-2013, 道路运输车辆卫星定位系统 终端通讯协议及数据
// 格式; section numbers are the 2013 edition's), sharing no code with the registry's
// gateway (registry/src/jt808/), so that the two agree only where the standard makes
// them agree. Only what the swarm sends is here: the 2013 header, 0x0100 registration,
// 0x0102 authentication, 0x0200 location and 0x0704 batches in one packet each (no
// sub-packages); and what it reads: 0x8100 and 0x8001, any other platform message
// answered 0x0001 result 3 (不支持).
//
// Each terminal connects, registers (unless --auth-codes has its code), authenticates;
// once every terminal is set up (a barrier over all of them), each sends --reports
// positions, one message at a time, the next as soon as the last is answered. The
// clock runs from the barrier to the last terminal's last reply.
//
// Threads: --threads io_contexts, one thread each; terminal i is driven by thread
// i % threads and touched by no other. The barrier and the end are counted with
// atomics; their work is posted to every thread.
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <iconv.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <nlohmann/json.hpp>

namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Bytes = std::string;  // raw bytes; std::string for its small-buffer and append

// ---------------------------------------------------------------------------
// The wire form (§4.4)

constexpr std::uint8_t kFlag = 0x7e;    // 标识位 §4.4.2
constexpr std::uint8_t kEscape = 0x7d;  // 0x7d 0x02 is 0x7e, 0x7d 0x01 is 0x7d

// Message ids (§8).
constexpr std::uint16_t kTerminalReply = 0x0001;  // 终端通用应答 §8.1
constexpr std::uint16_t kPlatformReply = 0x8001;  // 平台通用应答 §8.2
constexpr std::uint16_t kRegister = 0x0100;       // 终端注册 §8.5
constexpr std::uint16_t kRegisterReply = 0x8100;  // 终端注册应答 §8.6
constexpr std::uint16_t kAuthenticate = 0x0102;   // 终端鉴权 §8.8
constexpr std::uint16_t kLocation = 0x0200;       // 位置信息汇报 §8.18
constexpr std::uint16_t kLocationBatch = 0x0704;  // 定位数据批量上传

constexpr std::uint8_t kResultUnsupported = 3;  // 0x0001's 不支持

// Body properties (消息体属性, §4.4.3): bits 0-9 the body's length, 13 sub-packaged,
// 14 the 2019 edition's flag (reserved, 0, in 2013).
constexpr std::uint16_t kBodyLengthMask = 0x03ff;
constexpr std::uint16_t kPropertySplit = 1 << 13;
constexpr std::uint16_t kPropertyVersion = 1 << 14;
constexpr std::size_t kHeaderSize = 12;  // id 2, properties 2, phone BCD[6], serial 2

// Location status (状态位 §8.18): ACC on, positioned (定位), south, west.
constexpr std::uint32_t kStatusAcc = 1u << 0;
constexpr std::uint32_t kStatusPositioned = 1u << 1;
constexpr std::uint32_t kStatusSouth = 1u << 2;
constexpr std::uint32_t kStatusWest = 1u << 3;

constexpr std::uint8_t kItemMileage = 0x01;        // 附加信息 里程, DWORD in 0.1 km
constexpr std::size_t kLocationSize = 28 + 2 + 4;  // the base, then item 0x01

using Phone = std::array<std::uint8_t, 6>;    // 终端手机号 BCD[6]
using BcdTime = std::array<std::uint8_t, 6>;  // YYMMDDhhmmss in GMT+8

void PutU8(Bytes& out, unsigned v) {
  out.push_back(static_cast<char>(v & 0xff));
}
void PutU16(Bytes& out, unsigned v) {
  PutU8(out, v >> 8);
  PutU8(out, v);
}
void PutU32(Bytes& out, std::uint32_t v) {
  PutU16(out, v >> 16);
  PutU16(out, v & 0xffff);
}
unsigned GetU16(const std::uint8_t* p) {
  return static_cast<unsigned>(p[0] << 8 | p[1]);
}

/// Text in a BYTE[size] field, padded with 0x00 at the end (后补 0x00, §8.5).
void PutFixed(Bytes& out, std::string_view text, std::size_t size) {
  const std::size_t n = std::min(text.size(), size);
  out.append(text.data(), n);
  out.append(size - n, '\0');
}

/// `digits` as BCD[6], left-padded with zeros; nullopt when they are not 1 to 12
/// decimal digits.
std::optional<Phone> EncodePhone(std::string_view digits) {
  if (digits.empty() || digits.size() > 12) return std::nullopt;
  std::string padded(12 - digits.size(), '0');
  padded.append(digits);
  Phone out{};
  for (std::size_t i = 0; i < 12; ++i) {
    if (padded[i] < '0' || padded[i] > '9') return std::nullopt;
    out[i / 2] = static_cast<std::uint8_t>(out[i / 2] << 4 | (padded[i] - '0'));
  }
  return out;
}

/// The BCD[6] time of a Unix second, in GMT+8 (§8.18).
BcdTime EncodeTime(std::int64_t unix_s) {
  const std::time_t china = static_cast<std::time_t>(unix_s + 8 * 3600);
  std::tm tm{};
  gmtime_r(&china, &tm);
  const int fields[6] = {tm.tm_year % 100, tm.tm_mon + 1, tm.tm_mday,
                         tm.tm_hour,       tm.tm_min,     tm.tm_sec};
  BcdTime out{};
  for (int i = 0; i < 6; ++i)
    out[i] = static_cast<std::uint8_t>(fields[i] / 10 << 4 | fields[i] % 10);
  return out;
}

/// Appends one frame (§4.4.2): 0x7e, then header + body + check code with 0x7e and
/// 0x7d escaped, then 0x7e. The check code (§4.4.4) is the XOR of header and body.
void AppendFrame(Bytes& out, std::uint16_t msg_id, const Phone& phone, std::uint16_t serial,
                 std::string_view body) {
  std::uint8_t header[kHeaderSize];
  header[0] = static_cast<std::uint8_t>(msg_id >> 8);
  header[1] = static_cast<std::uint8_t>(msg_id);
  const auto props = static_cast<std::uint16_t>(body.size() & kBodyLengthMask);
  header[2] = static_cast<std::uint8_t>(props >> 8);
  header[3] = static_cast<std::uint8_t>(props);
  std::copy(phone.begin(), phone.end(), header + 4);
  header[10] = static_cast<std::uint8_t>(serial >> 8);
  header[11] = static_cast<std::uint8_t>(serial);
  std::uint8_t check = 0;
  auto put = [&out](std::uint8_t b) {
    if (b == kFlag || b == kEscape) {
      out.push_back(static_cast<char>(kEscape));
      out.push_back(static_cast<char>(b == kFlag ? 0x02 : 0x01));
    } else {
      out.push_back(static_cast<char>(b));
    }
  };
  out.push_back(static_cast<char>(kFlag));
  for (std::uint8_t b : header) {
    check ^= b;
    put(b);
  }
  for (char c : body) {
    const auto b = static_cast<std::uint8_t>(c);
    check ^= b;
    put(b);
  }
  put(check);
  out.push_back(static_cast<char>(kFlag));
}

/// One message from the platform, its body pointing into the decoder's buffer.
struct Incoming {
  std::uint16_t msg_id = 0;
  std::uint16_t serial = 0;
  const std::uint8_t* body = nullptr;
  std::size_t body_size = 0;
};

/// Cuts a byte stream into frames and decodes them (§4.4.2: 转义还原, 验证校验码,
/// 解析消息). Every 0x7e ends the frame before it and starts the next; bytes before
/// the first flag are dropped, and so is a run of more than 64 KiB without one. One
/// per connection; not thread-safe.
class FrameReader {
 public:
  /// Calls on_message(const Incoming&) for each good frame in [p, p + n) and
  /// on_bad(std::string reason) for each bad one.
  template <typename OnMessage, typename OnBad>
  void Feed(const std::uint8_t* p, std::size_t n, OnMessage&& on_message, OnBad&& on_bad) {
    const std::uint8_t* end = p + n;
    while (p < end) {
      const auto* flag = static_cast<const std::uint8_t*>(
          std::memchr(p, kFlag, static_cast<std::size_t>(end - p)));
      if (flag == nullptr) {
        if (started_) pending_.append(p, end);
        if (pending_.size() > kLimit) {
          pending_.clear();
          started_ = false;
        }
        return;
      }
      if (started_) {
        if (!pending_.empty()) {
          pending_.append(p, flag);
          Decode(pending_.data(), pending_.size(), on_message, on_bad);
          pending_.clear();
        } else if (flag > p) {
          Decode(p, static_cast<std::size_t>(flag - p), on_message, on_bad);
        }
      }
      started_ = true;
      p = flag + 1;
    }
  }

 private:
  static constexpr std::size_t kLimit = 1 << 16;

  template <typename OnMessage, typename OnBad>
  void Decode(const std::uint8_t* p, std::size_t n, OnMessage&& on_message, OnBad&& on_bad) {
    packet_.clear();
    for (std::size_t i = 0; i < n; ++i) {
      if (p[i] != kEscape) {
        packet_.push_back(p[i]);
      } else if (i + 1 < n && (p[i + 1] == 0x01 || p[i + 1] == 0x02)) {
        packet_.push_back(p[i + 1] == 0x01 ? kEscape : kFlag);
        ++i;
      } else {
        return on_bad("a bad escape");
      }
    }
    if (packet_.size() < kHeaderSize + 1) return on_bad("a frame shorter than a header");
    std::uint8_t check = 0;
    for (std::size_t i = 0; i + 1 < packet_.size(); ++i) check ^= packet_[i];
    if (check != packet_.back()) return on_bad("a wrong check code");
    const unsigned props = GetU16(&packet_[2]);
    if (props & kPropertyVersion) return on_bad("a 2019 header to a 2013 terminal");
    if (props & kPropertySplit) return on_bad("a sub-packaged reply");
    const std::size_t body_size = packet_.size() - 1 - kHeaderSize;
    if ((props & kBodyLengthMask) != body_size) return on_bad("a body of another length");
    Incoming in;
    in.msg_id = static_cast<std::uint16_t>(GetU16(&packet_[0]));
    in.serial = static_cast<std::uint16_t>(GetU16(&packet_[10]));
    in.body = packet_.data() + kHeaderSize;
    in.body_size = body_size;
    on_message(in);
  }

  bool started_ = false;
  std::basic_string<std::uint8_t> pending_;
  std::vector<std::uint8_t> packet_;
};

// ---------------------------------------------------------------------------
// Bodies (§8)

/// 终端注册 0x0100 (§8.5), 2013 widths: province and city 0, maker 5, model 20,
/// terminal id 7, plate colour 0 (未上牌) and so the "plate" is a made-up VIN; the same
/// fields as jt808_terminal.py's swarm sends.
Bytes RegistrationBody(std::string_view phone) {
  Bytes body;
  PutU16(body, 0);  // 省域 ID
  PutU16(body, 0);  // 市县域 ID
  PutFixed(body, "PINGM", 5);
  PutFixed(body, "PINGMA-SIM", 20);
  PutFixed(body, phone.substr(phone.size() > 7 ? phone.size() - 7 : 0), 7);
  PutU8(body, 0);
  const std::string vin = "PINGMA" + std::string(phone);
  body.append(vin.substr(vin.size() > 17 ? vin.size() - 17 : 0));
  return body;
}

/// What a position of the swarm carries; the rest of 0x0200 is fixed.
struct Fix {
  double lat = 0;  // degrees, south negative
  double lon = 0;  // degrees, west negative
  const BcdTime* time = nullptr;
  std::uint32_t mileage_tenths_km = 0;
};

/// 位置信息汇报 0x0200's body (§8.18): alarm 0, status ACC on and positioned, 1e-6
/// degrees, altitude 0, 36 km/h (in 0.1 km/h), heading 45, the time, item 0x01.
void AppendLocation(Bytes& out, const Fix& fix) {
  std::uint32_t status = kStatusAcc | kStatusPositioned;
  if (fix.lat < 0) status |= kStatusSouth;
  if (fix.lon < 0) status |= kStatusWest;
  PutU32(out, 0);  // 报警标志
  PutU32(out, status);
  PutU32(out, static_cast<std::uint32_t>(std::nearbyint(std::fabs(fix.lat) * 1e6)));
  PutU32(out, static_cast<std::uint32_t>(std::nearbyint(std::fabs(fix.lon) * 1e6)));
  PutU16(out, 0);    // 高程, m
  PutU16(out, 360);  // 速度, 0.1 km/h
  PutU16(out, 45);   // 方向, degrees from north
  out.append(reinterpret_cast<const char*>(fix.time->data()), fix.time->size());
  PutU8(out, kItemMileage);
  PutU8(out, 4);
  PutU32(out, fix.mileage_tenths_km);
}

/// The most positions one 0x0704 packet holds: count 2 + type 1, then per position
/// its length 2 and its body, within the 1,023 bytes of the length field.
constexpr std::size_t kMaxBatch = (kBodyLengthMask - 3) / (2 + kLocationSize);

// ---------------------------------------------------------------------------
// Auth codes on file, as jt808_terminal.py's read_auth_codes/write_auth_codes have
// them: a JSON object {phone: code}, the code as text when it is GBK, else
// {"hex": "..."}; phones compared without leading zeros.

/// `text` converted between encodings with iconv; nullopt when it does not convert.
std::optional<std::string> Convert(const char* to, const char* from, std::string_view text) {
  iconv_t cd = iconv_open(to, from);
  if (cd == reinterpret_cast<iconv_t>(-1)) return std::nullopt;
  std::string out(text.size() * 4 + 4, '\0');
  std::string in(text);
  char* in_p = in.data();
  std::size_t in_left = in.size();
  char* out_p = out.data();
  std::size_t out_left = out.size();
  const std::size_t done = iconv(cd, &in_p, &in_left, &out_p, &out_left);
  iconv_close(cd);
  if (done == static_cast<std::size_t>(-1) || in_left != 0) return std::nullopt;
  out.resize(out.size() - out_left);
  return out;
}

std::string NormalizePhone(std::string_view phone) {
  const std::size_t first = phone.find_first_not_of('0');
  return first == std::string_view::npos ? "0" : std::string(phone.substr(first));
}

std::string Hex(std::string_view bytes) {
  std::string out;
  for (char c : bytes) out += fmt::format("{:02x}", static_cast<unsigned char>(c));
  return out;
}

std::optional<Bytes> Unhex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  Bytes out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    unsigned v = 0;
    for (std::size_t j = i; j < i + 2; ++j) {
      const char c = hex[j];
      const int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
      if (d < 0) return std::nullopt;
      v = v << 4 | static_cast<unsigned>(d);
    }
    PutU8(out, v);
  }
  return out;
}

/// {normalized phone: code} from `path`; an error message in `error` on failure.
std::optional<std::map<std::string, Bytes>> ReadAuthCodes(const std::string& path,
                                                          std::string& error) {
  std::ifstream file(path);
  if (!file) {
    error = fmt::format("{}: cannot open: {}", path, std::strerror(errno));
    return std::nullopt;
  }
  const nlohmann::json doc = nlohmann::json::parse(file, nullptr, false);
  if (!doc.is_object()) {
    error = fmt::format("{}: not a JSON object", path);
    return std::nullopt;
  }
  std::map<std::string, Bytes> codes;
  for (const auto& [phone, value] : doc.items()) {
    std::optional<Bytes> code;
    if (value.is_string()) {
      code = Convert("GBK", "UTF-8", value.get<std::string>());
    } else if (value.is_object() && value.contains("hex") && value["hex"].is_string()) {
      code = Unhex(value["hex"].get<std::string>());
    }
    if (!code) {
      error =
          fmt::format("{}: the code of {} is neither GBK text nor {{\"hex\": ...}}", path, phone);
      return std::nullopt;
    }
    codes[NormalizePhone(phone)] = *code;
  }
  return codes;
}

bool WriteAuthCodes(const std::string& path, const std::map<std::string, Bytes>& codes,
                    std::string& error) {
  nlohmann::json doc = nlohmann::json::object();
  for (const auto& [phone, code] : codes) {
    const std::optional<std::string> text = Convert("UTF-8", "GBK", code);
    if (text && Convert("GBK", "UTF-8", *text) == code) {
      doc[phone] = *text;
    } else {
      doc[phone] = {{"hex", Hex(code)}};
    }
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream file(tmp, std::ios::trunc);
    file << doc.dump(0);
    if (!file.flush()) {
      error = fmt::format("{}: cannot write: {}", tmp, std::strerror(errno));
      return false;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    error = fmt::format("{}: cannot rename to {}: {}", tmp, path, std::strerror(errno));
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// The swarm

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  std::size_t terminals = 1000;
  std::size_t reports = 10;
  std::size_t batch = 1;
  std::string phone_prefix = "1390000";
  std::size_t first = 1;
  std::string auth_codes;
  std::string save_auth_codes;
  double lat = 38.04;
  double lon = 114.51;
  double timeout_s = 10.0;
  unsigned threads = 1;
};

/// One thread's counts, merged at the end.
struct Tally {
  std::uint64_t connected = 0, registered = 0, authenticated = 0, connected_at_end = 0;
  std::uint64_t messages_sent = 0, reports_sent = 0, replies_ok = 0, replies_failed = 0;
  std::uint64_t reports_ok = 0, timeouts = 0, late_replies = 0, platform_messages = 0;
  std::map<std::string, std::uint64_t> errors;
  std::vector<std::int64_t> latencies_ns;

  void Merge(const Tally& o) {
    connected += o.connected;
    registered += o.registered;
    authenticated += o.authenticated;
    connected_at_end += o.connected_at_end;
    messages_sent += o.messages_sent;
    reports_sent += o.reports_sent;
    replies_ok += o.replies_ok;
    replies_failed += o.replies_failed;
    reports_ok += o.reports_ok;
    timeouts += o.timeouts;
    late_replies += o.late_replies;
    platform_messages += o.platform_messages;
    for (const auto& [what, n] : o.errors) errors[what] += n;
    latencies_ns.insert(latencies_ns.end(), o.latencies_ns.begin(), o.latencies_ns.end());
  }
};

class Swarm;
class Shard;

/// One terminal over one TCP connection, driven by its shard's thread only. Owned by
/// its Shard, which outlives every handler (the io_context is run to its end before
/// the shards go), so handlers hold a plain `this`.
class Terminal {
 public:
  Terminal(Shard& shard, std::size_t index, std::string phone, const Phone& bcd,
           std::optional<Bytes> auth_code);

  void Connect(const tcp::endpoint& endpoint);
  /// After the barrier: sends the reports, or says at once that it is done when it is
  /// not set up.
  void StartReporting();
  /// Times out whatever is awaited past its deadline.
  void CheckDeadline(Clock::time_point now);
  /// At the end: counts the connection if it is still open, then closes it.
  void Finish();

  const std::string& phone() const { return phone_; }
  const std::optional<Bytes>& auth_code() const { return auth_code_; }
  bool ready() const { return phase_ == Phase::kReady; }

 private:
  enum class Phase { kConnecting, kRegistering, kAuthenticating, kReady, kReporting, kOver };

  void Read();
  void OnRead(const std::error_code& ec, std::size_t n);
  void OnMessage(const Incoming& in);
  void OnReply(std::uint16_t reply_serial, std::uint16_t reply_id, unsigned result,
               const std::uint8_t* code, std::size_t code_size);
  void Send(std::uint16_t msg_id, std::string_view body);
  void Request(std::uint16_t msg_id, std::string_view body, std::size_t positions);
  void Flush();
  void SendNextReport();
  void SetUpFailed(const std::string& why);
  void ReportingOver(const std::string& error);
  void Closed();
  void CloseSocket();

  Shard& shard_;
  Tally& tally_;
  const std::size_t index_;
  const std::string phone_;
  const Phone bcd_;
  std::optional<Bytes> auth_code_;
  tcp::socket socket_;
  Phase phase_ = Phase::kConnecting;
  bool open_ = false;

  std::uint16_t next_serial_ = 0;  // §4.4.3: from 0, one up per packet
  std::array<std::uint8_t, 4096> in_{};
  FrameReader reader_;
  Bytes out_;      // frames waiting for the one in flight
  Bytes writing_;  // the bytes of the async_write in flight
  bool write_in_flight_ = false;
  Bytes body_;

  // What is awaited: the serial and id of the request, its positions, since when.
  bool awaiting_ = false;
  std::uint16_t awaited_serial_ = 0;
  std::uint16_t awaited_id_ = 0;
  std::size_t awaited_positions_ = 0;
  Clock::time_point sent_at_{};
  Clock::time_point deadline_{};
  std::vector<std::uint16_t> abandoned_;  // serials whose reply timed out

  std::size_t next_report_ = 0;  // index of the next position to send
};

/// The terminals one thread drives, on its own io_context, and their counts.
class Shard {
 public:
  Shard(Swarm& swarm, Clock::duration timeout) : swarm_(swarm), timeout_(timeout), sweep_(io_) {}

  asio::io_context& io() { return io_; }
  Swarm& swarm() { return swarm_; }
  Tally& tally() { return tally_; }
  Clock::duration timeout() const { return timeout_; }
  std::vector<std::unique_ptr<Terminal>>& terminals() { return terminals_; }

  void Start(const tcp::endpoint& endpoint) {
    for (auto& t : terminals_) t->Connect(endpoint);
    Sweep();
  }
  void StartReporting() {
    for (auto& t : terminals_) t->StartReporting();
  }
  void Finish() {
    finished_ = true;
    sweep_.cancel();
    for (auto& t : terminals_) t->Finish();
  }

 private:
  // One timer per thread, not per request: a deadline is checked every tenth of the
  // timeout (at most 200 ms late), which costs nothing on the reports' path.
  void Sweep() {
    if (finished_) return;
    const auto now = Clock::now();
    for (auto& t : terminals_) t->CheckDeadline(now);
    sweep_.expires_after(std::clamp<Clock::duration>(timeout_ / 10, std::chrono::milliseconds(10),
                                                     std::chrono::milliseconds(200)));
    sweep_.async_wait([this](const std::error_code& ec) {
      if (!ec) Sweep();
    });
  }

  Swarm& swarm_;
  const Clock::duration timeout_;
  asio::io_context io_;
  asio::steady_timer sweep_;
  std::vector<std::unique_ptr<Terminal>> terminals_;
  Tally tally_;
  bool finished_ = false;
};

/// The barrier and the clock over every shard. SetUpOver and ReportingOver are called
/// from any shard's thread; the last set-up starts the reports everywhere, the last
/// report ends the run everywhere.
class Swarm {
 public:
  explicit Swarm(const Options& options)
      : options_(options), setting_up_(options.terminals), reporting_(0) {}

  const Options& options() const { return options_; }
  std::vector<std::unique_ptr<Shard>>& shards() { return shards_; }
  /// The position times, one a second, the last a second ago; set at the barrier.
  const std::vector<BcdTime>& times() const { return times_; }

  void Run(const tcp::endpoint& endpoint) {
    setup_started_ = Clock::now();
    std::vector<std::thread> threads;
    for (auto& shard : shards_) {
      asio::post(shard->io(), [&shard, endpoint] { shard->Start(endpoint); });
    }
    for (std::size_t i = 1; i < shards_.size(); ++i) {
      threads.emplace_back([this, i] { shards_[i]->io().run(); });
    }
    shards_[0]->io().run();
    for (auto& t : threads) t.join();
  }

  void SetUpOver(bool ready) {
    if (ready) ++ready_;
    if (--setting_up_ != 0) return;
    setup_over_ = Clock::now();
    // Each report of a terminal has its own second, ending now, so that none is a
    // duplicate of another.
    const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    times_.clear();
    for (std::size_t k = 0; k < options_.reports; ++k) {
      times_.push_back(EncodeTime(now_s - static_cast<std::int64_t>(options_.reports - k)));
    }
    reporting_ = ready_.load();
    started_ = Clock::now();
    if (reporting_ == 0) return End();
    for (auto& shard : shards_) asio::post(shard->io(), [&shard] { shard->StartReporting(); });
  }

  void ReportingOver() {
    if (--reporting_ == 0) End();
  }

  double setup_s() const { return Seconds(setup_over_ - setup_started_); }
  double elapsed_s() const { return Seconds(ended_ - started_); }

 private:
  static double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

  void End() {
    ended_ = Clock::now();
    for (auto& shard : shards_) asio::post(shard->io(), [&shard] { shard->Finish(); });
  }

  const Options& options_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<BcdTime> times_;
  std::atomic<std::size_t> setting_up_;
  std::atomic<std::size_t> ready_{0};
  std::atomic<std::size_t> reporting_;
  Clock::time_point setup_started_{}, setup_over_{}, started_{}, ended_{};
};

Terminal::Terminal(Shard& shard, std::size_t index, std::string phone, const Phone& bcd,
                   std::optional<Bytes> auth_code)
    : shard_(shard),
      tally_(shard.tally()),
      index_(index),
      phone_(std::move(phone)),
      bcd_(bcd),
      auth_code_(std::move(auth_code)),
      socket_(shard.io()) {}

void Terminal::Connect(const tcp::endpoint& endpoint) {
  deadline_ = Clock::now() + shard_.timeout();
  socket_.async_connect(endpoint, [this](const std::error_code& ec) {
    if (phase_ != Phase::kConnecting) return;  // timed out meanwhile
    if (ec) return SetUpFailed("set-up: connect: " + ec.message());
    ++tally_.connected;
    open_ = true;
    std::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    // Writes are tried at once (Flush) and left to async_write only when the socket
    // is full.
    socket_.non_blocking(true, ignored);
    Read();
    if (auth_code_) {
      phase_ = Phase::kAuthenticating;
      Request(kAuthenticate, *auth_code_, 0);
    } else {
      phase_ = Phase::kRegistering;
      Request(kRegister, RegistrationBody(phone_), 0);
    }
  });
}

void Terminal::StartReporting() {
  if (phase_ != Phase::kReady) return;  // not set up: not counted in the reports
  phase_ = Phase::kReporting;
  if (!open_) return ReportingOver("report: connection closed");
  SendNextReport();
}

void Terminal::CheckDeadline(Clock::time_point now) {
  if (phase_ == Phase::kConnecting && now > deadline_) {
    return SetUpFailed("set-up: connect timed out");
  }
  if (!awaiting_ || now <= deadline_) return;
  awaiting_ = false;
  if (phase_ == Phase::kRegistering || phase_ == Phase::kAuthenticating) {
    return SetUpFailed("set-up: no reply");
  }
  if (phase_ != Phase::kReporting) return;
  // As the Python swarm: a report without a reply in time is counted and the next one
  // sent; its reply, should it come, is counted late.
  ++tally_.messages_sent;
  tally_.reports_sent += awaited_positions_;
  ++tally_.timeouts;
  abandoned_.push_back(awaited_serial_);
  SendNextReport();
}

void Terminal::Finish() {
  if (open_) ++tally_.connected_at_end;
  if (phase_ == Phase::kReady || phase_ == Phase::kReporting) phase_ = Phase::kOver;
  CloseSocket();
}

void Terminal::Read() {
  socket_.async_read_some(asio::buffer(in_),
                          [this](const std::error_code& ec, std::size_t n) { OnRead(ec, n); });
}

void Terminal::OnRead(const std::error_code& ec, std::size_t n) {
  if (!open_) return;
  if (ec) return Closed();
  reader_.Feed(
      in_.data(), n, [this](const Incoming& in) { OnMessage(in); },
      [this](const std::string& why) { ++tally_.errors["a bad frame from the platform: " + why]; });
  if (open_) Read();
}

void Terminal::OnMessage(const Incoming& in) {
  if (in.msg_id == kPlatformReply) {
    if (in.body_size != 5) {
      ++tally_.errors[fmt::format("a 0x8001 of {} bytes, not 5", in.body_size)];
      return;
    }
    return OnReply(static_cast<std::uint16_t>(GetU16(in.body)),
                   static_cast<std::uint16_t>(GetU16(in.body + 2)), in.body[4], nullptr, 0);
  }
  if (in.msg_id == kRegisterReply) {
    if (in.body_size < 3) {
      ++tally_.errors[fmt::format("a 0x8100 of {} bytes", in.body_size)];
      return;
    }
    return OnReply(static_cast<std::uint16_t>(GetU16(in.body)), kRegister, in.body[2], in.body + 3,
                   in.body_size - 3);
  }
  // A platform command: answered 不支持 (§8.1), as the standard has a terminal do.
  ++tally_.platform_messages;
  body_.clear();
  PutU16(body_, in.serial);
  PutU16(body_, in.msg_id);
  PutU8(body_, kResultUnsupported);
  Send(kTerminalReply, body_);
}

void Terminal::OnReply(std::uint16_t reply_serial, std::uint16_t reply_id, unsigned result,
                       const std::uint8_t* code, std::size_t code_size) {
  if (!awaiting_ || reply_serial != awaited_serial_) {
    const auto late = std::find(abandoned_.begin(), abandoned_.end(), reply_serial);
    if (late != abandoned_.end()) {
      abandoned_.erase(late);
      ++tally_.late_replies;
    } else {
      ++tally_.errors["a reply to a serial not awaited"];
    }
    return;
  }
  awaiting_ = false;
  if (reply_id != awaited_id_) {
    const std::string what =
        fmt::format("0x{:04x} answered as if it were 0x{:04x}", awaited_id_, reply_id);
    if (phase_ == Phase::kReporting) return ReportingOver("report: " + what);
    return SetUpFailed("set-up: " + what);
  }
  switch (phase_) {
    case Phase::kRegistering:
      if (result != 0) return SetUpFailed(fmt::format("registration result {}", result));
      ++tally_.registered;
      auth_code_ = Bytes(reinterpret_cast<const char*>(code), code_size);
      phase_ = Phase::kAuthenticating;
      return Request(kAuthenticate, *auth_code_, 0);
    case Phase::kAuthenticating:
      if (result != 0) return SetUpFailed(fmt::format("authentication result {}", result));
      ++tally_.authenticated;
      phase_ = Phase::kReady;
      return shard_.swarm().SetUpOver(true);
    case Phase::kReporting: {
      tally_.latencies_ns.push_back(
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - sent_at_).count());
      ++tally_.messages_sent;
      tally_.reports_sent += awaited_positions_;
      if (result == 0) {
        ++tally_.replies_ok;
        tally_.reports_ok += awaited_positions_;
      } else {
        ++tally_.replies_failed;
        ++tally_.errors[fmt::format("report result {}", result)];
      }
      return SendNextReport();
    }
    default:
      return;
  }
}

void Terminal::SendNextReport() {
  const Options& o = shard_.swarm().options();
  if (next_report_ >= o.reports) return ReportingOver("");
  // Each terminal walks north-east from its own point near (--lat, --lon), as the
  // Python swarm's do, but within 0.1 degree of it however many terminals and reports:
  // 100 steps of 1e-5 degree, then from its point again. The benchmark's area, 0.1
  // degree around (39.9, 116.4), then holds every position.
  const double base_lat = o.lat + static_cast<double>(index_ % 100) * 0.001;
  const double base_lon = o.lon + static_cast<double>(index_ / 100 % 100) * 0.001;
  const std::size_t n = std::min(o.batch, o.reports - next_report_);
  const auto& times = shard_.swarm().times();
  body_.clear();
  if (o.batch > 1) {
    PutU16(body_, static_cast<unsigned>(n));
    PutU8(body_, 0);  // 位置数据类型: 正常位置批量汇报
  }
  for (std::size_t k = next_report_; k < next_report_ + n; ++k) {
    Fix fix;
    fix.lat = base_lat + static_cast<double>(k % 100) * 1e-5;
    fix.lon = base_lon + static_cast<double>(k % 100) * 1e-5;
    fix.time = &times[k];
    fix.mileage_tenths_km =
        static_cast<std::uint32_t>(std::nearbyint((1000 + static_cast<double>(k) / 100) * 10));
    if (o.batch > 1) PutU16(body_, kLocationSize);
    AppendLocation(body_, fix);
  }
  next_report_ += n;
  Request(o.batch > 1 ? kLocationBatch : kLocation, body_, n);
}

void Terminal::Request(std::uint16_t msg_id, std::string_view body, std::size_t positions) {
  awaiting_ = true;
  awaited_serial_ = next_serial_;
  awaited_id_ = msg_id;
  awaited_positions_ = positions;
  sent_at_ = Clock::now();
  deadline_ = sent_at_ + shard_.timeout();
  Send(msg_id, body);
}

void Terminal::Send(std::uint16_t msg_id, std::string_view body) {
  AppendFrame(out_, msg_id, bcd_, next_serial_++, body);
  if (!write_in_flight_) Flush();
}

void Terminal::Flush() {
  std::error_code ec;
  const std::size_t sent = socket_.write_some(asio::buffer(out_), ec);
  if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
    out_.clear();
    return Closed();
  }
  if (sent == out_.size()) {
    out_.clear();
    return;
  }
  writing_.assign(out_, sent, std::string::npos);
  out_.clear();
  write_in_flight_ = true;
  asio::async_write(socket_, asio::buffer(writing_),
                    [this](const std::error_code& wec, std::size_t) {
                      write_in_flight_ = false;
                      if (!open_) return;
                      if (wec) return Closed();
                      if (!out_.empty()) Flush();
                    });
}

void Terminal::SetUpFailed(const std::string& why) {
  ++tally_.errors[why];
  awaiting_ = false;
  phase_ = Phase::kOver;
  CloseSocket();
  shard_.swarm().SetUpOver(false);
}

void Terminal::ReportingOver(const std::string& error) {
  if (!error.empty()) {
    ++tally_.errors[error];
    CloseSocket();
  }
  awaiting_ = false;
  phase_ = Phase::kOver;
  shard_.swarm().ReportingOver();
}

/// The platform closed the connection (or it broke).
void Terminal::Closed() {
  CloseSocket();
  switch (phase_) {
    case Phase::kRegistering:
    case Phase::kAuthenticating:
      return SetUpFailed("set-up: connection closed");
    case Phase::kReporting:
      return ReportingOver("report: connection closed");
    default:  // kReady: told when the reports start
      return;
  }
}

void Terminal::CloseSocket() {
  open_ = false;
  std::error_code ignored;
  socket_.close(ignored);
}

/// Raises RLIMIT_NOFILE's soft limit to its hard limit; the new soft limit.
rlim_t RaiseOpenFilesLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur;
}

/// count phone numbers: the prefix + the index, zero-padded so that a number has at
/// least 11 digits (as jt808_terminal.py's swarm_phones).
std::vector<std::string> SwarmPhones(const std::string& prefix, std::size_t count,
                                     std::size_t first) {
  const std::size_t width = std::max<std::size_t>(std::to_string(first + count - 1).size(),
                                                  prefix.size() < 11 ? 11 - prefix.size() : 0);
  std::vector<std::string> phones;
  phones.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    std::string index = std::to_string(first + i);
    if (index.size() < width) index.insert(0, width - index.size(), '0');
    phones.push_back(prefix + index);
  }
  return phones;
}

/// The nearest-rank p-th percentile of sorted values, in ms to the µs.
nlohmann::json PercentileMs(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return nullptr;
  const auto rank = std::max<std::size_t>(
      1, static_cast<std::size_t>(std::ceil(static_cast<double>(sorted.size()) * p / 100)));
  return std::round(static_cast<double>(sorted[rank - 1]) / 1e3) / 1e3;
}

double Round(double v, double scale) {
  return std::round(v * scale) / scale;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "pingma-bench-jt808-swarm: many JT/T 808-2013 terminals at once (the jt808 benchmark's "
      "load). Opens --terminals connections, registers and authenticates each (or takes "
      "auth codes from a file), then, with all set up, sends --reports positions per "
      "terminal, each message as soon as the last was answered. Prints one JSON line of "
      "totals; exit status 1 unless every report was answered 0."};
  Options o;
  app.add_option("--host", o.host, "the platform's address")->capture_default_str();
  app.add_option("--port", o.port, "the platform's JT/T 808 port")->required();
  app.add_option("--terminals", o.terminals, "how many")->capture_default_str();
  app.add_option("--reports", o.reports, "positions per terminal")->capture_default_str();
  app.add_option("--batch", o.batch, "positions per 0x0704 batch; 1 sends 0x0200")
      ->capture_default_str();
  app.add_option("--phone-prefix", o.phone_prefix, "phones are the prefix + a zero-padded index")
      ->capture_default_str();
  app.add_option("--first", o.first, "the first index")->capture_default_str();
  app.add_option("--auth-codes", o.auth_codes,
                 "JSON {phone: code}: authenticate with these, register the rest");
  app.add_option("--save-auth-codes", o.save_auth_codes,
                 "write every terminal's auth code here after the run");
  app.add_option("--lat", o.lat, "base latitude")->capture_default_str();
  app.add_option("--lon", o.lon, "base longitude")->capture_default_str();
  app.add_option("--timeout", o.timeout_s, "seconds to wait for each reply (and a connect)")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "threads, each with an io_context and its share")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (o.batch < 1 || o.batch > kMaxBatch) {
    std::fprintf(stderr, "--batch is 1 to %zu (one 0x0704 packet; no sub-packages here)\n",
                 kMaxBatch);
    return 2;
  }
  if (o.threads < 1 || o.timeout_s <= 0 || o.terminals < 1) {
    std::fprintf(stderr, "--threads, --terminals and --timeout must be above 0\n");
    return 2;
  }

  const rlim_t nofile = RaiseOpenFilesLimit();
  std::map<std::string, Bytes> codes;
  if (!o.auth_codes.empty()) {
    std::string error;
    auto read = ReadAuthCodes(o.auth_codes, error);
    if (!read) {
      std::fprintf(stderr, "pingma-bench-jt808-swarm: %s\n", error.c_str());
      return 2;
    }
    codes = std::move(*read);
  }

  tcp::endpoint endpoint;
  {
    asio::io_context io;
    tcp::resolver resolver(io);
    std::error_code ec;
    auto found = resolver.resolve(o.host, std::to_string(o.port), ec);
    if (ec || found.empty()) {
      std::fprintf(stderr, "pingma-bench-jt808-swarm: cannot resolve %s: %s\n", o.host.c_str(),
                   ec.message().c_str());
      return 2;
    }
    endpoint = found.begin()->endpoint();
  }

  Swarm swarm(o);
  const auto timeout =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.timeout_s));
  for (unsigned i = 0; i < o.threads; ++i) {
    swarm.shards().push_back(std::make_unique<Shard>(swarm, timeout));
  }
  const std::vector<std::string> phones = SwarmPhones(o.phone_prefix, o.terminals, o.first);
  for (std::size_t i = 0; i < phones.size(); ++i) {
    const std::optional<Phone> bcd = EncodePhone(phones[i]);
    if (!bcd) {
      std::fprintf(stderr, "pingma-bench-jt808-swarm: %s is not a phone of at most 12 digits\n",
                   phones[i].c_str());
      return 2;
    }
    std::optional<Bytes> code;
    if (auto found = codes.find(NormalizePhone(phones[i])); found != codes.end()) {
      code = found->second;
    }
    Shard& shard = *swarm.shards()[i % o.threads];
    shard.terminals().push_back(
        std::make_unique<Terminal>(shard, i, phones[i], *bcd, std::move(code)));
  }
  for (auto& shard : swarm.shards()) {
    shard->tally().latencies_ns.reserve((o.terminals / o.threads + 1) *
                                        ((o.reports + o.batch - 1) / o.batch));
  }

  swarm.Run(endpoint);

  Tally total;
  std::map<std::string, Bytes> codes_out;
  for (auto& shard : swarm.shards()) {
    total.Merge(shard->tally());
    for (auto& t : shard->terminals()) {
      if (t->auth_code()) codes_out[t->phone()] = *t->auth_code();
    }
  }
  if (!o.save_auth_codes.empty()) {
    std::string error;
    if (!WriteAuthCodes(o.save_auth_codes, codes_out, error)) {
      std::fprintf(stderr, "pingma-bench-jt808-swarm: %s\n", error.c_str());
      return 1;
    }
  }
  std::sort(total.latencies_ns.begin(), total.latencies_ns.end());
  const double elapsed = swarm.elapsed_s();
  auto rate = [elapsed](std::uint64_t n) -> nlohmann::json {
    if (elapsed <= 0) return nullptr;
    return Round(static_cast<double>(n) / elapsed, 10);
  };
  nlohmann::json summary = {
      {"client", "cpp"},
      {"terminals", o.terminals},
      {"version", 2013},
      {"batch", o.batch},
      {"threads", o.threads},
      {"connected", total.connected},
      {"registered", total.registered},
      {"authenticated", total.authenticated},
      {"connected_at_end", total.connected_at_end},
      {"messages_sent", total.messages_sent},
      {"reports_sent", total.reports_sent},
      {"replies_ok", total.replies_ok},
      {"replies_failed", total.replies_failed},
      {"reports_ok", total.reports_ok},
      {"timeouts", total.timeouts},
      {"late_replies", total.late_replies},
      {"platform_messages", total.platform_messages},
      {"errors", total.errors},
      {"setup_s", Round(swarm.setup_s(), 1000)},
      {"elapsed_s", Round(elapsed, 1000)},
      {"reports_per_s", rate(total.reports_ok)},
      {"messages_per_s", rate(total.replies_ok)},
      {"latency_p50_ms", PercentileMs(total.latencies_ns, 50)},
      {"latency_p99_ms", PercentileMs(total.latencies_ns, 99)},
      {"latency_max_ms",
       total.latencies_ns.empty()
           ? nlohmann::json(nullptr)
           : nlohmann::json(Round(static_cast<double>(total.latencies_ns.back()) / 1e6, 1000))},
      {"open_files_limit", static_cast<std::uint64_t>(nofile)},
  };
  std::printf("%s\n", summary.dump().c_str());
  const bool all_ok = total.reports_ok == o.terminals * o.reports && total.errors.empty();
  return all_ok ? 0 : 1;
}
