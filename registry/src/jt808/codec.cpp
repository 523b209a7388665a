// The JT/T 808 wire form: framing, header, sub-packages, messages and replies.
#include "jt808/codec.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "pingma/common/domain.h"

namespace pingma::registry::jt808 {
namespace {

constexpr std::uint16_t kBodyLengthMask = 0x03ff;
constexpr std::uint16_t kPackageBit = 1u << 13;
constexpr std::uint16_t kVersionBit = 1u << 14;
constexpr int kEncryptionShift = 10;
constexpr std::uint16_t kEncryptionMask = 0x7;
constexpr std::size_t kPhoneDigits2013 = 12;
constexpr std::size_t kPhoneDigits2019 = 20;
/// A reassembled body's length must fit the header's 16-bit body_length.
constexpr std::size_t kMaxPackages = 64;
constexpr std::uint32_t kSouthBit = 1u << 2;
constexpr std::uint32_t kWestBit = 1u << 3;
constexpr std::int64_t kUtcPlus8Seconds = 8 * 3600;

std::uint8_t Byte(char c) {
  return static_cast<std::uint8_t>(c);
}

std::uint8_t CheckCode(std::string_view bytes) {
  std::uint8_t x = 0;
  for (char c : bytes) x ^= Byte(c);
  return x;
}

void PutU8(std::string& out, std::uint8_t v) {
  out.push_back(static_cast<char>(v));
}
void PutU16(std::string& out, std::uint16_t v) {
  PutU8(out, static_cast<std::uint8_t>(v >> 8));
  PutU8(out, static_cast<std::uint8_t>(v & 0xff));
}

std::uint16_t GetU16(std::string_view s, std::size_t at) {
  return static_cast<std::uint16_t>((Byte(s[at]) << 8) | Byte(s[at + 1]));
}

/// The digits of a BCD field; false when a nibble is over 9.
bool BcdDigits(std::string_view bytes, std::string* digits) {
  digits->clear();
  digits->reserve(bytes.size() * 2);
  for (char c : bytes) {
    const unsigned hi = Byte(c) >> 4;
    const unsigned lo = Byte(c) & 0x0f;
    if (hi > 9 || lo > 9) return false;
    digits->push_back(static_cast<char>('0' + hi));
    digits->push_back(static_cast<char>('0' + lo));
  }
  return true;
}

std::string Hex(std::string_view bytes) {
  std::string out;
  for (char c : bytes) out += fmt::format("{:02x}", Byte(c));
  return out;
}

std::string WithoutTrailingNuls(std::string_view s) {
  while (!s.empty() && s.back() == '\0') s.remove_suffix(1);
  return std::string(s);
}

/// Reads a message body field by field; each read checks the length first and
/// names the message, the field and the lengths when it does not fit.
class BodyReader {
 public:
  BodyReader(std::string_view data, std::string what) : data_(data), what_(std::move(what)) {}

  std::size_t pos() const { return pos_; }
  std::size_t left() const { return data_.size() - pos_; }

  Status Error(const std::string& message) const {
    return Status::Malformed(what_ + ": " + message);
  }

  Result<std::string_view> Bytes(std::size_t n, const char* field) {
    if (left() < n) {
      return Error(
          fmt::format("{} needs {} byte(s) at byte {}, only {} left", field, n, pos_, left()));
    }
    std::string_view out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  Result<std::uint8_t> U8(const char* field) {
    PINGMA_ASSIGN_OR_RETURN(std::string_view b, Bytes(1, field));
    return Byte(b[0]);
  }
  Result<std::uint16_t> U16(const char* field) {
    PINGMA_ASSIGN_OR_RETURN(std::string_view b, Bytes(2, field));
    return GetU16(b, 0);
  }
  Result<std::uint32_t> U32(const char* field) {
    PINGMA_ASSIGN_OR_RETURN(std::string_view b, Bytes(4, field));
    return (std::uint32_t{Byte(b[0])} << 24) | (std::uint32_t{Byte(b[1])} << 16) |
           (std::uint32_t{Byte(b[2])} << 8) | std::uint32_t{Byte(b[3])};
  }
  std::string_view Rest() {
    std::string_view out = data_.substr(pos_);
    pos_ = data_.size();
    return out;
  }

 private:
  std::string_view data_;
  std::string what_;
  std::size_t pos_ = 0;
};

/// A BCD time's digits as a Unix time; `error` names the field when it fails.
Result<std::int64_t> TimeFromBcd(std::string_view bcd, const BodyReader& error) {
  std::string d;
  if (bcd.size() != 6 || !BcdDigits(bcd, &d)) {
    return error.Error(fmt::format("the time {} is not BCD[6] YYMMDDhhmmss", Hex(bcd)));
  }
  const auto two = [&d](std::size_t at) { return (d[at] - '0') * 10 + (d[at + 1] - '0'); };
  const int hour = two(6), minute = two(8), second = two(10);
  auto day = Date::Parse(fmt::format("20{}-{}-{}", d.substr(0, 2), d.substr(2, 2), d.substr(4, 2)));
  if (!day.ok() || hour > 23 || minute > 59 || second > 59) {
    return error.Error(fmt::format("the time {} is not a valid date and time (YYMMDDhhmmss)", d));
  }
  const std::int64_t seconds =
      day->days() * 86400 + hour * 3600 + minute * 60 + second - kUtcPlus8Seconds;
  return seconds * 1000;
}

Result<Location> ReadLocation(std::string_view body, std::string what) {
  BodyReader r(body, std::move(what));
  Location loc;
  PINGMA_ASSIGN_OR_RETURN(loc.alarm, r.U32("the alarm flags"));
  PINGMA_ASSIGN_OR_RETURN(loc.status, r.U32("the status"));
  PINGMA_ASSIGN_OR_RETURN(const std::uint32_t lat, r.U32("the latitude"));
  PINGMA_ASSIGN_OR_RETURN(const std::uint32_t lon, r.U32("the longitude"));
  PINGMA_ASSIGN_OR_RETURN(const std::uint16_t altitude, r.U16("the altitude"));
  PINGMA_ASSIGN_OR_RETURN(const std::uint16_t speed, r.U16("the speed"));
  PINGMA_ASSIGN_OR_RETURN(const std::uint16_t heading, r.U16("the heading"));
  PINGMA_ASSIGN_OR_RETURN(const std::string_view time, r.Bytes(6, "the time"));
  if (lat > 90'000'000) {
    return r.Error(fmt::format("the latitude {} is over 90 degrees (in 1e-6 degrees)", lat));
  }
  if (lon > 180'000'000) {
    return r.Error(fmt::format("the longitude {} is over 180 degrees (in 1e-6 degrees)", lon));
  }
  if (heading > 359) return r.Error(fmt::format("the heading {} is over 359", heading));
  PINGMA_ASSIGN_OR_RETURN(loc.at_ms, TimeFromBcd(time, r));
  loc.lat = static_cast<double>(lat) / 1e6;
  if (loc.status & kSouthBit) loc.lat = -loc.lat;
  loc.lon = static_cast<double>(lon) / 1e6;
  if (loc.status & kWestBit) loc.lon = -loc.lon;
  loc.altitude_m = altitude;
  loc.speed_kmh = static_cast<double>(speed) / 10.0;
  loc.heading = heading;
  // Additional items (位置附加信息项): id u8, length u8, data. Skipped, each checked.
  while (r.left() > 0) {
    const std::size_t at = r.pos();
    if (r.left() < 2) {
      return r.Error(fmt::format(
          "an additional item at byte {} needs an id and a length (2 bytes), only 1 left", at));
    }
    PINGMA_ASSIGN_OR_RETURN(const std::uint8_t id, r.U8("an additional item's id"));
    PINGMA_ASSIGN_OR_RETURN(const std::uint8_t length, r.U8("an additional item's length"));
    if (r.left() < length) {
      return r.Error(
          fmt::format("the additional item 0x{:02x} at byte {} says {} byte(s), only {} left", id,
                      at, length, r.left()));
    }
    (void)r.Bytes(length, "an additional item");
  }
  return loc;
}

std::string EditionName(const char* message, Version version) {
  return fmt::format("{} ({})", message, ToString(version));
}

}  // namespace

std::string MessageName(std::uint16_t msg_id) {
  switch (msg_id) {
    case kTerminalGeneralReply:
      return "0x0001 terminal general reply";
    case kHeartbeat:
      return "0x0002 heartbeat";
    case kLogout:
      return "0x0003 logout";
    case kRegistration:
      return "0x0100 registration";
    case kAuthentication:
      return "0x0102 authentication";
    case kLocationReport:
      return "0x0200 location report";
    case kBatchLocation:
      return "0x0704 batch location upload";
    case kPlatformGeneralReply:
      return "0x8001 platform general reply";
    case kRegistrationReply:
      return "0x8100 registration reply";
    default:
      return fmt::format("0x{:04x}", msg_id);
  }
}

const char* ToString(Version version) {
  return version == Version::k2019 ? "2019" : "2013";
}

const char* ToString(RegistrationResult result) {
  switch (result) {
    case RegistrationResult::kOk:
      return "ok";
    case RegistrationResult::kVehicleRegistered:
      return "vehicle already registered";
    case RegistrationResult::kNoSuchVehicle:
      return "no such vehicle";
    case RegistrationResult::kTerminalRegistered:
      return "terminal already registered";
    case RegistrationResult::kNoSuchTerminal:
      return "no such terminal";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------
// Framing

void FrameSplitter::Feed(std::string_view bytes, std::vector<Result<std::string>>& out) {
  for (char c : bytes) {
    const std::uint8_t b = Byte(c);
    if (b == kFlag) {
      if (state_ == State::kInFrame) {
        if (escaped_) {
          out.push_back(Status::Malformed(
              fmt::format("bad escape: 0x7d right before the closing flag, at byte {} of the frame",
                          wire_ - 1)));
        } else if (frame_.size() > 0 && frame_.size() <= kMinHeader) {
          out.push_back(Status::Malformed(
              fmt::format("a frame of {} byte(s) is too short: a header and a check code take at "
                          "least {}",
                          frame_.size(), kMinHeader + 1)));
        } else if (!frame_.empty()) {
          const std::uint8_t sent = Byte(frame_.back());
          const std::uint8_t computed =
              CheckCode(std::string_view(frame_).substr(0, frame_.size() - 1));
          if (sent != computed) {
            out.push_back(Status::Malformed(
                fmt::format("check code 0x{:02x} does not match 0x{:02x}, the XOR of the "
                            "frame's {} bytes",
                            sent, computed, frame_.size() - 1)));
          } else {
            frame_.pop_back();
            out.push_back(std::move(frame_));
          }
        }
      }
      // Every flag opens the next frame.
      state_ = State::kInFrame;
      frame_.clear();
      wire_ = 0;
      escaped_ = false;
      continue;
    }
    if (state_ != State::kInFrame) continue;
    ++wire_;
    std::uint8_t value = b;
    if (escaped_) {
      escaped_ = false;
      if (b == 0x02) {
        value = kFlag;
      } else if (b == 0x01) {
        value = kEscape;
      } else {
        out.push_back(Status::Malformed(fmt::format(
            "bad escape: 0x7d 0x{:02x} at byte {} of the frame (only 0x7d 0x01 and 0x7d 0x02 "
            "are escapes)",
            b, wire_ - 2)));
        state_ = State::kSkipping;
        frame_.clear();
        continue;
      }
    } else if (b == kEscape) {
      escaped_ = true;
      continue;
    }
    if (frame_.size() == kMaxFrame) {
      out.push_back(Status::TooLarge(
          fmt::format("a frame over {} bytes (a header, a {}-byte body and a check code)",
                      kMaxFrame, kMaxBody)));
      state_ = State::kSkipping;
      frame_.clear();
      continue;
    }
    frame_.push_back(static_cast<char>(value));
  }
}

// ---------------------------------------------------------------------------
// Header

Result<Frame> DecodeFrame(std::string_view frame) {
  if (frame.size() < 4) {
    return Status::Malformed(fmt::format("a header needs at least {} bytes, the frame holds {}",
                                         kMinHeader, frame.size()));
  }
  Frame out;
  Header& h = out.header;
  h.msg_id = GetU16(frame, 0);
  const std::uint16_t properties = GetU16(frame, 2);
  h.body_length = properties & kBodyLengthMask;
  h.encryption = static_cast<std::uint8_t>((properties >> kEncryptionShift) & kEncryptionMask);
  h.version = (properties & kVersionBit) ? Version::k2019 : Version::k2013;
  const bool packaged = (properties & kPackageBit) != 0;
  const std::size_t phone_bytes =
      (h.version == Version::k2019 ? kPhoneDigits2019 : kPhoneDigits2013) / 2;
  const std::size_t header_bytes = (h.version == Version::k2019 ? 17 : 12) + (packaged ? 4 : 0);
  const std::string what =
      fmt::format("the {} header of {}", ToString(h.version), MessageName(h.msg_id));
  if (frame.size() < header_bytes) {
    return Status::Malformed(fmt::format("{}{} takes {} bytes, the frame holds {}", what,
                                         packaged ? " with its package items" : "", header_bytes,
                                         frame.size()));
  }
  std::size_t at = 4;
  if (h.version == Version::k2019) h.protocol_version = Byte(frame[at++]);
  const std::string_view phone = frame.substr(at, phone_bytes);
  if (!BcdDigits(phone, &h.phone)) {
    return Status::Malformed(fmt::format("{}: the phone {} is not BCD", what, Hex(phone)));
  }
  at += phone_bytes;
  h.serial = GetU16(frame, at);
  at += 2;
  if (packaged) {
    h.package = Package{GetU16(frame, at), GetU16(frame, at + 2)};
    at += 4;
  }
  out.body = std::string(frame.substr(at));
  if (out.body.size() != h.body_length) {
    return Status::Malformed(fmt::format("{}: it says a body of {} byte(s), the frame holds {}",
                                         what, h.body_length, out.body.size()));
  }
  return out;
}

std::string NormalizePhone(std::string_view digits) {
  const std::size_t first = digits.find_first_not_of('0');
  if (first == std::string_view::npos) return digits.empty() ? std::string() : std::string("0");
  return std::string(digits.substr(first));
}

Result<std::string> EncodeFrame(const Header& header, std::string_view body) {
  if (body.size() > kMaxBody) {
    return Status::Invalid(
        fmt::format("a body of {} bytes is over the {} a frame holds", body.size(), kMaxBody));
  }
  if (header.encryption > kEncryptionMask) {
    return Status::Invalid(fmt::format("encryption {} does not fit 3 bits", header.encryption));
  }
  const std::size_t digits = header.version == Version::k2019 ? kPhoneDigits2019 : kPhoneDigits2013;
  if (header.phone.size() > digits || !std::all_of(header.phone.begin(), header.phone.end(),
                                                   [](char c) { return c >= '0' && c <= '9'; })) {
    return Status::Invalid(
        fmt::format("the phone '{}' is not up to {} digits", header.phone, digits));
  }
  std::string raw;
  raw.reserve(kMaxHeader + body.size() + 1);
  PutU16(raw, header.msg_id);
  std::uint16_t properties = static_cast<std::uint16_t>(body.size());
  properties |= static_cast<std::uint16_t>(header.encryption << kEncryptionShift);
  if (header.package) properties |= kPackageBit;
  if (header.version == Version::k2019) properties |= kVersionBit;
  PutU16(raw, properties);
  if (header.version == Version::k2019) PutU8(raw, header.protocol_version);
  const std::string phone = std::string(digits - header.phone.size(), '0') + header.phone;
  for (std::size_t i = 0; i < phone.size(); i += 2) {
    PutU8(raw, static_cast<std::uint8_t>(((phone[i] - '0') << 4) | (phone[i + 1] - '0')));
  }
  PutU16(raw, header.serial);
  if (header.package) {
    PutU16(raw, header.package->total);
    PutU16(raw, header.package->index);
  }
  raw.append(body);
  PutU8(raw, CheckCode(raw));
  std::string wire;
  wire.reserve(raw.size() * 2 + 2);
  wire.push_back(static_cast<char>(kFlag));
  for (char c : raw) {
    if (Byte(c) == kFlag) {
      wire.push_back(static_cast<char>(kEscape));
      wire.push_back(0x02);
    } else if (Byte(c) == kEscape) {
      wire.push_back(static_cast<char>(kEscape));
      wire.push_back(0x01);
    } else {
      wire.push_back(c);
    }
  }
  wire.push_back(static_cast<char>(kFlag));
  return wire;
}

// ---------------------------------------------------------------------------
// Sub-packages

PackageAssembler::Outcome PackageAssembler::Add(Frame package, Clock::time_point now) {
  Outcome out;
  const Header& h = package.header;
  if (!h.package) {
    out.refused = Status::Malformed(MessageName(h.msg_id) + " has no package items");
    return out;
  }
  const Package p = *h.package;
  const std::size_t limit = std::min(limits_.max_packages, kMaxPackages);
  if (p.total == 0 || p.index == 0 || p.index > p.total) {
    out.refused = Status::Malformed(
        fmt::format("{}: package {} of {}; packages are numbered from 1 to their total",
                    MessageName(h.msg_id), p.index, p.total));
    return out;
  }
  if (p.total > limit) {
    out.refused = Status::Malformed(fmt::format("{} in {} packages: over the limit of {}",
                                                MessageName(h.msg_id), p.total, limit));
    return out;
  }
  out.dropped = Expire(now);
  if (active_ && (phone_ != h.phone || msg_id_ != h.msg_id || total_ != p.total)) {
    const std::string dropped = Drop(fmt::format("a package of another message ({} in {}) came",
                                                 MessageName(h.msg_id), p.total));
    out.dropped = out.dropped.empty() ? dropped : out.dropped + "; " + dropped;
  }
  if (!active_) {
    active_ = true;
    phone_ = h.phone;
    msg_id_ = h.msg_id;
    total_ = p.total;
    started_ = now;
    parts_.assign(p.total, std::nullopt);
    received_ = 0;
    bytes_ = 0;
  }
  std::optional<std::string>& slot = parts_[p.index - 1];
  if (slot) {
    out.repeat = true;
    return out;
  }
  bytes_ += package.body.size();
  slot = std::move(package.body);
  ++received_;
  if (received_ < total_) return out;
  Frame whole;
  whole.header = std::move(package.header);
  whole.header.package.reset();
  whole.body.reserve(bytes_);
  for (const auto& part : parts_) whole.body += *part;
  whole.header.body_length = static_cast<std::uint16_t>(whole.body.size());
  active_ = false;
  parts_.clear();
  received_ = 0;
  bytes_ = 0;
  out.message = std::move(whole);
  return out;
}

std::string PackageAssembler::Expire(Clock::time_point now) {
  if (!active_ || now - started_ < limits_.max_age) return {};
  return Drop(fmt::format("not whole within {} ms of its first package",
                          static_cast<long long>(limits_.max_age.count())));
}

std::optional<PackageAssembler::Clock::time_point> PackageAssembler::expires_at() const {
  if (!active_) return std::nullopt;
  return started_ + limits_.max_age;
}

std::string PackageAssembler::Drop(const std::string& why) {
  std::string text = fmt::format("{} from {}: {} of {} packages arrived; dropped, {}",
                                 MessageName(msg_id_), phone_, received_, total_, why);
  active_ = false;
  parts_.clear();
  received_ = 0;
  bytes_ = 0;
  return text;
}

// ---------------------------------------------------------------------------
// Messages

Result<Registration> DecodeRegistration(const Frame& frame) {
  const Version version = frame.header.version;
  const bool v2019 = version == Version::k2019;
  BodyReader r(frame.body, EditionName("0x0100 registration", version));
  Registration reg;
  reg.phone = frame.header.phone;
  reg.version = version;
  PINGMA_ASSIGN_OR_RETURN(reg.province, r.U16("the province"));
  PINGMA_ASSIGN_OR_RETURN(reg.city, r.U16("the city"));
  PINGMA_ASSIGN_OR_RETURN(const std::string_view maker, r.Bytes(v2019 ? 11 : 5, "the maker ID"));
  PINGMA_ASSIGN_OR_RETURN(const std::string_view model, r.Bytes(v2019 ? 30 : 20, "the model"));
  PINGMA_ASSIGN_OR_RETURN(const std::string_view id, r.Bytes(v2019 ? 30 : 7, "the terminal ID"));
  PINGMA_ASSIGN_OR_RETURN(reg.plate_colour, r.U8("the plate colour"));
  reg.maker = WithoutTrailingNuls(maker);
  reg.model = WithoutTrailingNuls(model);
  reg.terminal_id = WithoutTrailingNuls(id);
  reg.plate = WithoutTrailingNuls(r.Rest());
  return reg;
}

Result<Authentication> DecodeAuthentication(const Frame& frame) {
  const Version version = frame.header.version;
  BodyReader r(frame.body, EditionName("0x0102 authentication", version));
  Authentication auth;
  auth.phone = frame.header.phone;
  if (version == Version::k2013) {
    auth.auth_code = WithoutTrailingNuls(r.Rest());
  } else {
    PINGMA_ASSIGN_OR_RETURN(const std::uint8_t length, r.U8("the auth code's length"));
    PINGMA_ASSIGN_OR_RETURN(const std::string_view code, r.Bytes(length, "the auth code"));
    PINGMA_ASSIGN_OR_RETURN(const std::string_view imei, r.Bytes(15, "the IMEI"));
    PINGMA_ASSIGN_OR_RETURN(const std::string_view software, r.Bytes(20, "the software version"));
    if (r.left() > 0) {
      return r.Error(
          fmt::format("{} byte(s) after the software version, where the body ends", r.left()));
    }
    auth.auth_code = WithoutTrailingNuls(code);
    auth.imei = WithoutTrailingNuls(imei);
    auth.software_version = WithoutTrailingNuls(software);
  }
  if (auth.auth_code.empty()) return r.Error("the auth code is empty");
  return auth;
}

Result<Location> DecodeLocation(std::string_view body) {
  return ReadLocation(body, MessageName(kLocationReport));
}

Result<BatchLocation> DecodeBatchLocation(std::string_view body) {
  const std::string what = MessageName(kBatchLocation);
  BodyReader r(body, what);
  BatchLocation batch;
  PINGMA_ASSIGN_OR_RETURN(const std::uint16_t count, r.U16("the count"));
  PINGMA_ASSIGN_OR_RETURN(const std::uint8_t type, r.U8("the type"));
  if (type > 1) {
    return r.Error(
        fmt::format("the type {} is neither 0 (normal) nor 1 (blind-area re-send)", type));
  }
  batch.resent = type == 1;
  for (std::uint16_t i = 1; i <= count; ++i) {
    const std::string item = fmt::format("item {} of {}", i, count);
    PINGMA_ASSIGN_OR_RETURN(const std::uint16_t length, r.U16((item + "'s length").c_str()));
    PINGMA_ASSIGN_OR_RETURN(const std::string_view data, r.Bytes(length, item.c_str()));
    PINGMA_ASSIGN_OR_RETURN(Location loc, ReadLocation(data, what + ", " + item));
    batch.locations.push_back(loc);
  }
  if (r.left() > 0) {
    return r.Error(fmt::format("{} byte(s) after the last of its {} item(s)", r.left(), count));
  }
  return batch;
}

Result<std::int64_t> BcdTimeToUnixMs(std::string_view bcd) {
  BodyReader error(bcd, "BCD time");
  return TimeFromBcd(bcd, error);
}

// ---------------------------------------------------------------------------
// Replies

namespace {

Header ReplyHeader(const Header& request, std::uint16_t msg_id, std::uint16_t serial) {
  Header h;
  h.msg_id = msg_id;
  h.version = request.version;
  h.protocol_version = request.protocol_version;
  h.phone = request.phone;
  h.serial = serial;
  return h;
}

}  // namespace

Result<std::string> EncodeGeneralReply(const Header& request, std::uint16_t serial,
                                       GeneralResult result) {
  std::string body;
  PutU16(body, request.serial);
  PutU16(body, request.msg_id);
  PutU8(body, static_cast<std::uint8_t>(result));
  return EncodeFrame(ReplyHeader(request, kPlatformGeneralReply, serial), body);
}

Result<std::string> EncodeRegistrationReply(const Header& request, std::uint16_t serial,
                                            RegistrationResult result, std::string_view auth_code) {
  if (result == RegistrationResult::kOk && auth_code.size() > kMaxBody - 3) {
    return Status::Invalid(fmt::format("an auth code of {} bytes is over the {} a reply holds",
                                       auth_code.size(), kMaxBody - 3));
  }
  std::string body;
  PutU16(body, request.serial);
  PutU8(body, static_cast<std::uint8_t>(result));
  if (result == RegistrationResult::kOk) body.append(auth_code);
  return EncodeFrame(ReplyHeader(request, kRegistrationReply, serial), body);
}

}  // namespace pingma::registry::jt808
