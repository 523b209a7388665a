// The JT/T 808 wire form (道路运输车辆卫星定位系统终端通讯协议, editions 2013 and
// 2019): framing, the header, sub-packages, the terminal's messages the registry
// takes, and the platform's replies.
//
// Pure: no I/O and no clock (a time is passed in), so each rule is tested on its
// own (tests/registry/jt808_codec_test.cpp); the gateway (gateway.h) feeds it what
// a socket reads. Every decoder checks a length before it reads and says which
// message, which field and what length when something does not fit: none reads
// past its input. What does not decode is kMalformed (kTooLarge for a frame over
// its bound); what cannot be encoded, kInvalid.
// The values are plain and safe to copy between threads; a FrameSplitter and a
// PackageAssembler belong to one connection and are not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pingma/common/status.h"

namespace pingma::registry::jt808 {

// The message ids (消息 ID) this codec knows.
inline constexpr std::uint16_t kTerminalGeneralReply = 0x0001;  ///< 终端通用应答
inline constexpr std::uint16_t kHeartbeat = 0x0002;             ///< 终端心跳
inline constexpr std::uint16_t kLogout = 0x0003;                ///< 终端注销
inline constexpr std::uint16_t kRegistration = 0x0100;          ///< 终端注册
inline constexpr std::uint16_t kAuthentication = 0x0102;        ///< 终端鉴权
inline constexpr std::uint16_t kLocationReport = 0x0200;        ///< 位置信息汇报
inline constexpr std::uint16_t kBatchLocation = 0x0704;         ///< 定位数据批量上传
inline constexpr std::uint16_t kPlatformGeneralReply = 0x8001;  ///< 平台通用应答
inline constexpr std::uint16_t kRegistrationReply = 0x8100;     ///< 终端注册应答

/// "0x0200 location report", or "0x1234" for an id this codec does not know.
std::string MessageName(std::uint16_t msg_id);

/// The flag that opens and closes every frame (标识位); inside a frame it is sent
/// as 0x7d 0x02, and 0x7d itself as 0x7d 0x01.
inline constexpr std::uint8_t kFlag = 0x7e;
inline constexpr std::uint8_t kEscape = 0x7d;

/// A body is at most 1023 bytes (bits 0-9 of the header's properties).
inline constexpr std::size_t kMaxBody = 1023;
/// The longest header: 2019's 17 bytes and the 4 of the sub-package items.
inline constexpr std::size_t kMaxHeader = 21;
/// The shortest header: 2013's 12 bytes without sub-package items.
inline constexpr std::size_t kMinHeader = 12;
/// A frame between its flags, unescaped: header, body and check code. On the wire
/// escaping at most doubles it (2090 bytes).
inline constexpr std::size_t kMaxFrame = kMaxHeader + kMaxBody + 1;

/// Cuts a byte stream into frames. Every 0x7e closes the frame before it (if there
/// are bytes since the last flag) and opens the next, so the usual "7e ... 7e 7e
/// ... 7e" of back-to-back frames yields each frame once, and nothing between the
/// two flags of a junction is reported. Bytes before the first 0x7e of the stream
/// are not a frame and are dropped without a word.
///
/// Each frame is yielded unescaped, with its check code (the XOR of the header and
/// body bytes) verified and removed, or as the error that dropped it, for that
/// frame alone:
///  - a bad escape (0x7d followed by anything but 0x01 or 0x02, or by the flag);
///  - a frame over kMaxFrame bytes, reported as soon as it passes the bound;
///  - a frame too short to hold a 2013 header and a check code (1 to 12 bytes);
///  - a check code that does not match.
/// After a bad escape or an overlong frame the rest is skipped up to the next
/// 0x7e, which opens a new frame: the splitter resynchronises on every flag. A frame
/// begun and never closed (a half frame at a disconnect) is never yielded. It holds
/// at most kMaxFrame bytes whatever it is fed.
class FrameSplitter {
 public:
  /// Feeds the next bytes of the stream; appends to `out`, in order, each frame
  /// (header and body) or error they complete.
  void Feed(std::string_view bytes, std::vector<Result<std::string>>& out);

  /// Bytes of an unfinished frame held now.
  std::size_t buffered() const { return frame_.size(); }

 private:
  enum class State { kBeforeFirstFlag, kInFrame, kSkipping };

  State state_ = State::kBeforeFirstFlag;
  std::string frame_;     // the frame so far, unescaped
  std::size_t wire_ = 0;  // bytes on the wire since its opening flag
  bool escaped_ = false;  // the last byte was 0x7d
};

enum class Version {
  k2013,  ///< JT/T 808-2013: phone BCD[6], bit 14 of the properties clear
  k2019,  ///< JT/T 808-2019: bit 14 set, a protocol version byte, phone BCD[10]
};

/// "2013" or "2019".
const char* ToString(Version version);

/// The sub-package items (消息包封装项), present when bit 13 of the properties is set.
struct Package {
  std::uint16_t total = 0;  ///< packages in the message
  std::uint16_t index = 0;  ///< this one's, from 1
};

/// A message header (消息头).
struct Header {
  std::uint16_t msg_id = 0;
  /// Bits 0-9 of the properties: the body's length. A message reassembled from
  /// sub-packages carries the whole body's length here (up to 65535).
  std::uint16_t body_length = 0;
  /// Bits 10-12 of the properties: 0 none, 1 (bit 10) RSA. Only 0 is decoded.
  std::uint8_t encryption = 0;
  Version version = Version::k2013;
  /// 2019 only: the protocol version byte (1 for the first 2019 edition).
  std::uint8_t protocol_version = 0;
  /// The terminal's phone number (终端手机号) as the digits of its BCD, as sent: 12
  /// digits in 2013, 20 in 2019, leading zeros kept. Look terminals up by
  /// NormalizePhone of it.
  std::string phone;
  std::uint16_t serial = 0;  ///< 消息流水号, the sender's own counter
  std::optional<Package> package;
};

/// A frame's header and body.
struct Frame {
  Header header;
  std::string body;
};

/// Decodes a frame as FrameSplitter yields it (header and body, no check code).
/// Errors: the header does not fit, the phone is not BCD, the header's body length
/// is not the body's.
Result<Frame> DecodeFrame(std::string_view frame);

/// A phone as the registry keys terminals by: the digits with their leading zeros
/// removed, so that one number sent as 2013's 12 digits ("013800138000") and 2019's
/// 20 ("00000000013800138000") is one terminal ("13800138000"). All zeros give "0".
std::string NormalizePhone(std::string_view digits);

/// The frame on the wire for `header` and `body`: header (its body_length taken from
/// `body`), body and check code, escaped, between two flags. The header's phone
/// may be shorter than its edition's digits (it is padded with leading zeros).
/// Errors: a body over kMaxBody, a phone with anything but digits or too many.
Result<std::string> EncodeFrame(const Header& header, std::string_view body);

/// Reassembles messages sent in sub-packages (分包), with memory bounded per
/// connection: one message in progress, of at most `max_packages` packages (each
/// body at most kMaxBody bytes), and for at most `max_age` from its first package.
/// Packages may come in any order; a repeat of one already held is ignored. A
/// package of another message (another phone, id or total) drops the one in
/// progress, as does its age; either is said in Outcome::dropped.
class PackageAssembler {
 public:
  using Clock = std::chrono::steady_clock;

  struct Limits {
    std::size_t max_packages = 16;
    std::chrono::milliseconds max_age{60'000};
  };

  struct Outcome {
    /// The whole message, when this package completed it: the header of the
    /// completing package without its package items, and the bodies in order.
    std::optional<Frame> message;
    /// Not OK: this package was refused (index 0 or over its total, a total over
    /// the limit), and why. Nothing in progress changes.
    Status refused;
    /// Not empty: a message in progress was dropped incomplete, and why.
    std::string dropped;
    /// This package was already held (a repeat); it changed nothing.
    bool repeat = false;
  };

  explicit PackageAssembler(Limits limits) : limits_(limits) {}

  /// Takes one package (a frame whose header has package items) received at `now`.
  Outcome Add(Frame package, Clock::time_point now);
  /// Drops the message in progress if it is older than max_age at `now`; says why,
  /// or returns empty.
  std::string Expire(Clock::time_point now);
  /// When the message in progress expires; nullopt when there is none.
  std::optional<Clock::time_point> expires_at() const;
  /// Body bytes held now.
  std::size_t buffered() const { return bytes_; }

 private:
  std::string Drop(const std::string& why);

  Limits limits_;
  bool active_ = false;
  std::string phone_;
  std::uint16_t msg_id_ = 0;
  std::uint16_t total_ = 0;
  Clock::time_point started_{};
  std::vector<std::optional<std::string>> parts_;
  std::size_t received_ = 0;
  std::size_t bytes_ = 0;
};

/// 0x0100 terminal registration (终端注册). Fixed fields are NUL-padded on the wire;
/// trailing NULs are removed here.
struct Registration {
  std::string phone;  ///< from the header, as sent
  Version version = Version::k2013;
  std::uint16_t province = 0;     ///< 省域 ID (GB/T 2260)
  std::uint16_t city = 0;         ///< 市县域 ID
  std::string maker;              ///< 制造商 ID: 5 bytes in 2013, 11 in 2019
  std::string model;              ///< 终端型号: 20 bytes, 30 in 2019
  std::string terminal_id;        ///< 终端 ID: 7 bytes, 30 in 2019
  std::uint8_t plate_colour = 0;  ///< 车牌颜色 (JT/T 415); 0: no plate, `plate` is the VIN
  std::string plate;  ///< 车辆标识: the rest of the body, GBK bytes as sent (not converted)
};

/// Decodes the body of a 0x0100 frame by its header's edition: 37 bytes before the
/// plate in 2013, 76 in 2019.
Result<Registration> DecodeRegistration(const Frame& frame);

/// 0x0102 terminal authentication (终端鉴权).
struct Authentication {
  std::string phone;      ///< from the header, as sent
  std::string auth_code;  ///< 鉴权码, trailing NULs removed; never empty
  std::string imei;       ///< 2019: 终端 IMEI (15 bytes, trailing NULs removed); 2013: empty
  std::string software_version;  ///< 2019: 软件版本号 (20 bytes); 2013: empty
};

/// Decodes the body of a 0x0102 frame: in 2013 the whole body is the code; in 2019
/// a length byte, the code, the IMEI (15) and the software version (20), exactly.
Result<Authentication> DecodeAuthentication(const Frame& frame);

/// One position of a 0x0200 location report (位置基本信息); the additional items
/// after it are length-checked and skipped.
struct Location {
  std::uint32_t alarm = 0;   ///< 报警标志, as sent
  std::uint32_t status = 0;  ///< 状态, as sent (bit 1: located; bits 2 and 3 give the signs)
  double lat = 0;            ///< degrees; south negative (status bit 2)
  double lon = 0;            ///< degrees; west negative (status bit 3)
  int altitude_m = 0;        ///< 高程, metres
  double speed_kmh = 0;      ///< 速度 (sent in 0.1 km/h)
  int heading = 0;           ///< 方向, degrees clockwise from north, 0-359
  std::int64_t at_ms = 0;    ///< the terminal's time (sent in UTC+8), Unix ms UTC
};

/// Bytes of a location report before its additional items.
inline constexpr std::size_t kLocationFixedBytes = 28;

/// Decodes a 0x0200 body. Errors: shorter than 28 bytes, a latitude over 90 or a
/// longitude over 180 degrees, a heading over 359, a time that is not a valid BCD
/// date and time, an additional item cut short.
Result<Location> DecodeLocation(std::string_view body);

/// 0x0704 batch location upload (定位数据批量上传).
struct BatchLocation {
  bool resent = false;  ///< type 1: positions kept in a blind area (盲区补报); 0: normal
  std::vector<Location> locations;
};

/// Decodes a 0x0704 body: count u16, type u8, then `count` items of a u16 length and
/// a 0x0200 body; nothing may follow the last. An item that does not decode fails
/// the whole batch (its index is in the error).
Result<BatchLocation> DecodeBatchLocation(std::string_view body);

/// A BCD[6] time YYMMDDhhmmss in UTC+8 (the standard's time zone), years 2000-2099,
/// as Unix ms UTC.
Result<std::int64_t> BcdTimeToUnixMs(std::string_view bcd);

/// The result of a 0x8001 platform general reply (平台通用应答).
enum class GeneralResult : std::uint8_t {
  kOk = 0,            ///< 成功/确认
  kFailure = 1,       ///< 失败
  kWrongMessage = 2,  ///< 消息有误
  kUnsupported = 3,   ///< 不支持
  kAlarmAck = 4,      ///< 报警处理确认
};

/// The result of a 0x8100 registration reply (终端注册应答).
enum class RegistrationResult : std::uint8_t {
  kOk = 0,                  ///< 成功 (the reply carries the auth code)
  kVehicleRegistered = 1,   ///< 车辆已被注册
  kNoSuchVehicle = 2,       ///< 数据库中无该车辆
  kTerminalRegistered = 3,  ///< 终端已被注册
  kNoSuchTerminal = 4,      ///< 数据库中无该终端
};

/// "ok", "vehicle already registered", ... for notices.
const char* ToString(RegistrationResult result);

/// The 0x8001 frame answering the message whose header is `request` (its serial
/// and id in the body), to the same phone in the same edition (and protocol
/// version byte), carrying the platform's own `serial`.
Result<std::string> EncodeGeneralReply(const Header& request, std::uint16_t serial,
                                       GeneralResult result);

/// The 0x8100 frame answering the registration whose header is `request`. The auth
/// code follows the result only when it is kOk (as its bytes, without a
/// terminator); at most kMaxBody - 3 bytes.
Result<std::string> EncodeRegistrationReply(const Header& request, std::uint16_t serial,
                                            RegistrationResult result, std::string_view auth_code);

}  // namespace pingma::registry::jt808
