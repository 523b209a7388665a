#!/usr/bin/env python3
"""A JT/T 808 in-vehicle terminal (车载终端) for the registry's tests and benchmarks.

Standard library only; runs under `python3` and `/usr/bin/python3` (3.11). Written from
the standard, JT/T 808-2013 and JT/T 808-2019 (道路运输车辆卫星定位系统 终端通讯协议及
数据格式), not from the registry's gateway: it shares no code with it, so that the two
agree only where the standard makes them agree. Section numbers below are those of the
2013 edition; the 2019 edition keeps the layout and its differences are named where
they matter (the header, the registration and the authentication).

The layers, each usable alone:

- the codec, pure functions on bytes: `escape`/`unescape`, `check_code`, BCD,
  `Message` (header + body; `.packet()`, `.frame()`), `decode_frame`,
  `FrameSplitter` (a byte stream into frames), `split_message` and `Reassembler`
  (sub-packages, 分包);
- the bodies: `Registration` (0x0100), `Authentication` (0x0102), `Position` (0x0200,
  and the items of 0x0704 through `batch_body`), `GeneralReply` (0x8001/0x0001),
  `RegistrationReply` (0x8100), `ResendRequest` (0x8003); each with encode and decode,
  so that a test's fake platform can use them too;
- deliberately bad input for tests: `frame_with_bad_check`, `frame_with_bad_escape`,
  `frame_with_wrong_length`, `garbage`, `Terminal.send_half_frame_and_close`, and
  `find_check_code`/`position_with_check_code`, which choose a payload whose check code
  is 0x7e or 0x7d;
- `Terminal`, one terminal over TCP on asyncio;
- the command line: `run` (one terminal along a track), `swarm` (many terminals at once,
  for the benchmark) and `decode` (frames in hex to JSON).

    term = Terminal("127.0.0.1", port, "13800000001", version=2019)
    await term.connect()
    reply = await term.register()            # RegistrationReply; term.auth_code saved
    await term.authenticate()                # GeneralReply, .ok
    await term.report(Position(38.04, 114.51, datetime.now(timezone.utc)))
    await term.report_batch([p1, p2, p3])    # 0x0704, split into sub-packages if long
    await term.reconnect()                   # new connection, authenticated again
    await term.close()

Command line (each command has --help):

    jt808_terminal.py run --host H --port P --phone 13800000001 --track "38.04,114.51;38.05,114.52"
    jt808_terminal.py swarm --host H --port P --terminals 1000 --reports 100 --phone-prefix 1390000
    jt808_terminal.py decode 7e0002000001380000000100013b7e
"""

import argparse
import asyncio
import collections
import dataclasses
import json
import os
import random
import struct
import sys
import time
from datetime import datetime, timedelta, timezone

try:
    import resource  # Unix only; the swarm raises its descriptor limit with it
except ImportError:  # pragma: no cover
    resource = None

# ---------------------------------------------------------------------------
# constants

FLAG = 0x7E  # 标识位, §4.4.2
ESCAPE = 0x7D

# Message ids used here (§8).
TERMINAL_REPLY = 0x0001  # 终端通用应答, §8.1
PLATFORM_REPLY = 0x8001  # 平台通用应答, §8.2
HEARTBEAT = 0x0002  # 终端心跳, §8.3
RESEND_REQUEST = 0x8003  # 补传分包请求, §8.4
REGISTER = 0x0100  # 终端注册, §8.5
REGISTER_REPLY = 0x8100  # 终端注册应答, §8.6
LOGOUT = 0x0003  # 终端注销, §8.7
AUTHENTICATE = 0x0102  # 终端鉴权, §8.8
LOCATION = 0x0200  # 位置信息汇报, §8.18
LOCATION_BATCH = 0x0704  # 定位数据批量上传

MESSAGE_NAMES = {
    TERMINAL_REPLY: "terminal_reply", PLATFORM_REPLY: "platform_reply",
    HEARTBEAT: "heartbeat", RESEND_REQUEST: "resend_request", REGISTER: "register",
    REGISTER_REPLY: "register_reply", LOGOUT: "logout", AUTHENTICATE: "authenticate",
    LOCATION: "location", LOCATION_BATCH: "location_batch",
}

# Results of the general replies (§8.1 and §8.2): 0 成功/确认, 1 失败, 2 消息有误,
# 3 不支持, 4 报警处理确认 (0x8001 only).
RESULT_OK, RESULT_FAILED, RESULT_MESSAGE_ERROR, RESULT_UNSUPPORTED, RESULT_ALARM_ACK = range(5)

# Results of the registration reply (§8.6): 0 成功, 1 车辆已被注册, 2 数据库中无该车辆,
# 3 终端已被注册, 4 数据库中无该终端.
(REGISTER_OK, REGISTER_VEHICLE_TAKEN, REGISTER_NO_VEHICLE, REGISTER_TERMINAL_TAKEN,
 REGISTER_NO_TERMINAL) = range(5)

# Body properties (消息体属性, §4.4.3 Figure 2): bits 0-9 the body's length, 10-12 the
# encryption (all 0: none; bit 10: RSA), 13 sub-packaged, 14 the 2019 version flag
# (reserved, 0, in 2013), 15 reserved.
BODY_LENGTH_MASK = 0x03FF
MAX_BODY = BODY_LENGTH_MASK  # 1023 bytes: a longer body has to be sub-packaged
PROPERTY_SPLIT = 1 << 13
PROPERTY_VERSION = 1 << 14
PROTOCOL_VERSION_2019 = 1  # 协议版本号 in the 2019 header: "初始版本为 1"

VERSIONS = (2013, 2019)
PHONE_BYTES = {2013: 6, 2019: 10}  # 终端手机号 BCD[6] (2013) and BCD[10] (2019)

# Location status bits (状态位, §8.18): 0 ACC on, 1 positioned (定位), 2 south latitude,
# 3 west longitude.
STATUS_ACC = 1 << 0
STATUS_POSITIONED = 1 << 1
STATUS_SOUTH = 1 << 2
STATUS_WEST = 1 << 3

ITEM_MILEAGE = 0x01  # 附加信息 0x01: 里程 DWORD, 1/10 km

BATCH_NORMAL = 0  # 0x0704 位置数据类型: 0 正常位置批量汇报
BATCH_BLIND_AREA = 1  # 1 盲区补报

# Times in the body are BCD[6] YYMMDDhhmmss in GMT+8 (§8.18).
CHINA = timezone(timedelta(hours=8))


class FrameError(ValueError):
    """Bytes that are not a well-formed frame: a bad escape, a wrong check code, a
    header or a body shorter or longer than it says."""


class ProtocolError(Exception):
    """The platform answered, but not as the standard says (a reply to another
    message id, a body of the wrong size)."""


class ReplyTimeout(TimeoutError):
    """No reply to a serial within the time allowed."""


class ConnectionClosed(ConnectionError):
    """The connection closed (or was never open) while a reply was awaited."""


# ---------------------------------------------------------------------------
# escaping and the check code (§4.4.2, §4.4.4)


def escape(data):
    """The bytes of header + body + check code as sent between the flags: 0x7d becomes
    0x7d 0x01 and 0x7e becomes 0x7d 0x02 (§4.4.2). The order matters: 0x7d is
    replaced first, so that the 0x7d of an escaped 0x7e is not escaped again."""
    return bytes(data).replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")


def unescape(data):
    """The inverse of `escape`. Raises FrameError on a 0x7d followed by anything but
    0x01 or 0x02, on a trailing 0x7d, and on a bare 0x7e."""
    data = bytes(data)
    if FLAG in data:
        raise FrameError("0x7e inside a frame")
    if ESCAPE not in data:
        return data
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b == ESCAPE:
            if i + 1 >= n:
                raise FrameError("0x7d at the end of a frame")
            nxt = data[i + 1]
            if nxt == 0x01:
                out.append(0x7D)
            elif nxt == 0x02:
                out.append(0x7E)
            else:
                raise FrameError("0x7d followed by 0x%02x" % nxt)
            i += 2
        else:
            out.append(b)
            i += 1
    return bytes(out)


def check_code(data):
    """The check code (校验码, §4.4.4): the XOR of every byte of header and body, before
    escaping."""
    code = 0
    for b in data:
        code ^= b
    return code


# ---------------------------------------------------------------------------
# BCD and text fields (§4.2 data types)


def bcd_encode(digits, size):
    """Decimal digits as BCD[size] (8421 code), left-padded with zeros; raises
    ValueError when the digits do not fit or are not digits."""
    digits = str(digits)
    if not digits.isdigit() or not digits.isascii():
        raise ValueError("not decimal digits: %r" % digits)
    if len(digits) > 2 * size:
        raise ValueError("%d digits do not fit in BCD[%d]" % (len(digits), size))
    return bytes.fromhex(digits.rjust(2 * size, "0"))


def bcd_decode(data):
    """BCD bytes as their digits (leading zeros kept); raises ValueError on a nibble
    above 9."""
    text = bytes(data).hex()
    if not text.isdigit():
        raise ValueError("not BCD: %s" % text)
    return text


def encode_bcd_time(when):
    """BCD[6] YYMMDDhhmmss of an aware datetime, in GMT+8 (§8.18). Naive datetimes are
    refused: whether one meant UTC or Beijing time cannot be guessed."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("a naive datetime: give it a time zone")
    local = when.astimezone(CHINA)
    if not 2000 <= local.year <= 2099:
        raise ValueError("year %d does not fit in YY" % local.year)
    return bytes.fromhex(local.strftime("%y%m%d%H%M%S"))


def decode_bcd_time(data):
    """The aware datetime (UTC+8) of a BCD[6] YYMMDDhhmmss; raises ValueError."""
    text = bcd_decode(data)
    if len(text) != 12:
        raise ValueError("BCD time is 6 bytes")
    return datetime(2000 + int(text[0:2]), int(text[2:4]), int(text[4:6]), int(text[6:8]),
                    int(text[8:10]), int(text[10:12]), tzinfo=CHINA)


def fixed_field(text, size, encoding="ascii"):
    """Text in a BYTE[size] field, padded with 0x00 at the end (后补 0x00, §8.5);
    raises ValueError when it is longer."""
    data = text.encode(encoding) if isinstance(text, str) else bytes(text)
    if len(data) > size:
        raise ValueError("%r is longer than %d bytes" % (text, size))
    return data.ljust(size, b"\x00")


def fixed_text(data, encoding="ascii"):
    """The text of a BYTE[n] field, its 0x00 padding dropped."""
    return bytes(data).rstrip(b"\x00").decode(encoding, errors="replace")


def normalize_phone(phone):
    """A phone number's digits without the zeros BCD padding adds in front, so that
    "013800000001" (2013) and "00000000013800000001" (2019) compare equal."""
    return str(phone).lstrip("0") or "0"


# ---------------------------------------------------------------------------
# messages: header + body (§4.4.3)


@dataclasses.dataclass
class Message:
    """One packet: the header's fields and the body (unescaped, no check code).

    `package` is (total, index) for a sub-package (index from 1), else None.
    `length` is the body length written in the header; None writes len(body) (a test
    may set another to make a frame whose header lies). `encryption` goes into bits
    10-12 (0: none)."""

    msg_id: int
    phone: str
    serial: int
    body: bytes = b""
    version: int = 2013
    package: tuple = None
    encryption: int = 0
    protocol_version: int = PROTOCOL_VERSION_2019
    length: int = None

    def header(self):
        """The header's bytes (§4.4.3 Table 2; 2019: a version byte after the properties
        and a 10-byte phone)."""
        if self.version not in VERSIONS:
            raise ValueError("version is 2013 or 2019, not %r" % (self.version,))
        length = len(self.body) if self.length is None else self.length
        if not 0 <= length <= BODY_LENGTH_MASK:
            raise ValueError("a body of %d bytes needs sub-packages (at most %d in one)"
                             % (length, MAX_BODY))
        props = length | (self.encryption & 0x7) << 10
        if self.package is not None:
            props |= PROPERTY_SPLIT
        if self.version == 2019:
            props |= PROPERTY_VERSION
        out = bytearray(struct.pack(">HH", self.msg_id, props))
        if self.version == 2019:
            out.append(self.protocol_version)
        out += bcd_encode(self.phone, PHONE_BYTES[self.version])
        out += struct.pack(">H", self.serial & 0xFFFF)
        if self.package is not None:
            total, index = self.package
            out += struct.pack(">HH", total, index)
        return bytes(out)

    def packet(self):
        """Header + body: what the check code covers."""
        return self.header() + bytes(self.body)

    def frame(self):
        """The frame as sent: 0x7e, escaped (header + body + check code), 0x7e."""
        return seal(self.packet())

    @property
    def name(self):
        return MESSAGE_NAMES.get(self.msg_id, "0x%04x" % self.msg_id)


def seal(packet, check=None):
    """A packet (header + body) framed: its check code appended (or `check`, to make a
    frame with a wrong one), escaped, between two 0x7e."""
    code = check_code(packet) if check is None else check
    return b"\x7e" + escape(bytes(packet) + bytes([code])) + b"\x7e"


def decode_packet(packet):
    """The Message of an unescaped header + body (no check code). Raises FrameError
    when the header is cut short or the body's length differs from the header's."""
    packet = bytes(packet)
    if len(packet) < 4:
        raise FrameError("a header of %d bytes" % len(packet))
    msg_id, props = struct.unpack_from(">HH", packet, 0)
    version = 2019 if props & PROPERTY_VERSION else 2013
    offset = 4
    protocol_version = PROTOCOL_VERSION_2019
    if version == 2019:
        if len(packet) < 5:
            raise FrameError("a 2019 header without its version byte")
        protocol_version = packet[4]
        offset = 5
    phone_size = PHONE_BYTES[version]
    split = bool(props & PROPERTY_SPLIT)
    header_size = offset + phone_size + 2 + (4 if split else 0)
    if len(packet) < header_size:
        raise FrameError("a %d header of %d bytes, not %d" % (version, len(packet), header_size))
    try:
        phone = bcd_decode(packet[offset:offset + phone_size])
    except ValueError as e:
        raise FrameError("phone: %s" % e) from None
    offset += phone_size
    (serial,) = struct.unpack_from(">H", packet, offset)
    offset += 2
    package = None
    if split:
        package = struct.unpack_from(">HH", packet, offset)
        offset += 4
    body = packet[offset:]
    length = props & BODY_LENGTH_MASK
    if len(body) != length:
        raise FrameError("the header says a body of %d bytes, there are %d" % (length, len(body)))
    return Message(msg_id=msg_id, phone=phone, serial=serial, body=body, version=version,
                   package=package, encryption=(props >> 10) & 0x7,
                   protocol_version=protocol_version)


def decode_frame(frame):
    """The Message of one frame, with or without its 0x7e flags: unescaped, its check
    code verified, then parsed (§4.4.2: 转义还原 -> 验证校验码 -> 解析消息). Raises
    FrameError."""
    data = bytes(frame)
    if data[:1] == b"\x7e":
        data = data[1:]
    if data[-1:] == b"\x7e":
        data = data[:-1]
    raw = unescape(data)
    if len(raw) < 2:
        raise FrameError("a frame of %d bytes" % len(raw))
    packet, code = raw[:-1], raw[-1]
    if check_code(packet) != code:
        raise FrameError("check code 0x%02x, computed 0x%02x" % (code, check_code(packet)))
    return decode_packet(packet)


class FrameSplitter:
    """Cuts a byte stream into frames: feed() returns the escaped contents found between
    0x7e flags, in order. Bytes before the first flag are dropped (counted in
    `dropped`); empty contents (a flag that ends one frame and a flag that starts the
    next) are skipped. A run of more than `limit` bytes without a flag is dropped too,
    so that a peer cannot make the buffer grow without end. Not thread-safe."""

    def __init__(self, limit=1 << 16):
        self._buffer = bytearray()
        self._started = False
        self.limit = limit
        self.dropped = 0

    def feed(self, data):
        self._buffer += data
        frames = []
        while True:
            at = self._buffer.find(b"\x7e")
            if at < 0:
                break
            if self._started:
                if at > 0:
                    frames.append(bytes(self._buffer[:at]))
            else:
                self.dropped += at
                self._started = True
            del self._buffer[:at + 1]
        if len(self._buffer) > self.limit:
            self.dropped += len(self._buffer)
            self._buffer.clear()
            self._started = False
        return frames

    @property
    def pending(self):
        """Bytes received after the last flag."""
        return len(self._buffer)


# ---------------------------------------------------------------------------
# sub-packages (分包, §4.4.3 Table 3 and §7.12)


def split_message(msg_id, body, phone, first_serial, version=2013, max_body=MAX_BODY):
    """A long body as sub-packages: Messages of at most `max_body` body bytes each,
    package = (total, index) with index from 1, and consecutive serials from
    first_serial (§7.12: 分包消息应采用连续递增的流水号). A body that fits in one packet
    still comes back as one sub-package (1, 1): callers that want a plain packet for a
    short body check the length first."""
    if not 1 <= max_body <= MAX_BODY:
        raise ValueError("max_body is 1..%d" % MAX_BODY)
    body = bytes(body)
    chunks = [body[i:i + max_body] for i in range(0, len(body), max_body)] or [b""]
    total = len(chunks)
    if total > 0xFFFF:
        raise ValueError("more than 65535 sub-packages")
    return [Message(msg_id=msg_id, phone=phone, serial=(first_serial + i) & 0xFFFF,
                    body=chunk, version=version, package=(total, i + 1))
            for i, chunk in enumerate(chunks)]


class Reassembler:
    """Collects sub-packages until a message is whole. add() returns the whole Message
    (body joined, package None, serial that of the first sub-package) once every index
    of its (phone, msg_id, first serial, total) has come, else None; a Message that is
    not sub-packaged comes back as it is. A repeated index replaces the earlier one.
    Raises FrameError on an index of 0 or past the total. Not thread-safe."""

    def __init__(self):
        self._parts = {}

    @staticmethod
    def _key(message):
        total, index = message.package
        return (normalize_phone(message.phone), message.msg_id,
                (message.serial - (index - 1)) & 0xFFFF, total)

    def add(self, message):
        if message.package is None:
            return message
        total, index = message.package
        if not 1 <= index <= total:
            raise FrameError("sub-package %d of %d" % (index, total))
        key = self._key(message)
        parts = self._parts.setdefault(key, {})
        parts[index] = message
        if len(parts) < total:
            return None
        del self._parts[key]
        first = parts[1]
        return dataclasses.replace(first, serial=key[2], package=None, length=None,
                                   body=b"".join(parts[i].body for i in range(1, total + 1)))

    def missing(self):
        """{(phone, msg_id, first serial, total): [indices not yet received]}."""
        return {key: [i for i in range(1, key[3] + 1) if i not in parts]
                for key, parts in self._parts.items()}


# ---------------------------------------------------------------------------
# bodies


@dataclasses.dataclass
class Registration:
    """终端注册 0x0100 (§8.5). Field widths: maker 5, model 20, terminal id 7 bytes in
    2013; 11, 30 and 30 in 2019; each padded with 0x00 at the end. The plate (车辆标识:
    the plate, or the VIN when the colour is 0, 未上牌) is GBK text to the end of the
    body."""

    province: int = 0  # 省域 ID: the first two digits of the GB/T 2260 code
    city: int = 0  # 市县域 ID: its last four digits
    maker: str = ""
    model: str = ""
    terminal_id: str = ""
    plate_colour: int = 0  # JT/T 415-2006 5.4.12; 0 when not plated
    plate: str = ""

    WIDTHS = {2013: (5, 20, 7), 2019: (11, 30, 30)}

    def encode(self, version=2013):
        maker, model, terminal_id = self.WIDTHS[version]
        return (struct.pack(">HH", self.province, self.city)
                + fixed_field(self.maker, maker) + fixed_field(self.model, model)
                + fixed_field(self.terminal_id, terminal_id)
                + bytes([self.plate_colour]) + self.plate.encode("gbk"))

    @classmethod
    def decode(cls, body, version=2013):
        maker, model, terminal_id = cls.WIDTHS[version]
        fixed = 4 + maker + model + terminal_id + 1
        if len(body) < fixed:
            raise ProtocolError("a %d registration of %d bytes (at least %d)"
                                % (version, len(body), fixed))
        province, city = struct.unpack_from(">HH", body, 0)
        at = 4
        fields = []
        for width in (maker, model, terminal_id):
            fields.append(fixed_text(body[at:at + width]))
            at += width
        return cls(province, city, fields[0], fields[1], fields[2], body[at],
                   bytes(body[at + 1:]).decode("gbk", errors="replace"))


@dataclasses.dataclass
class Authentication:
    """终端鉴权 0x0102 (§8.8). 2013: the body is the auth code. 2019: the code's length
    (BYTE), the code, the IMEI (BYTE[15]) and the software version (BYTE[20]), these two
    padded with 0x00 at the end. The code is kept as the bytes the platform gave."""

    code: bytes
    imei: str = ""
    software_version: str = ""

    def encode(self, version=2013):
        code = self.code.encode("gbk") if isinstance(self.code, str) else bytes(self.code)
        if version == 2013:
            return code
        if len(code) > 255:
            raise ValueError("an auth code of %d bytes (at most 255 in 2019)" % len(code))
        return (bytes([len(code)]) + code + fixed_field(self.imei, 15)
                + fixed_field(self.software_version, 20))

    @classmethod
    def decode(cls, body, version=2013):
        body = bytes(body)
        if version == 2013:
            return cls(body)
        if not body or len(body) != 1 + body[0] + 15 + 20:
            raise ProtocolError("a 2019 authentication of %d bytes" % len(body))
        n = body[0]
        return cls(body[1:1 + n], fixed_text(body[1 + n:16 + n]), fixed_text(body[16 + n:]))


@dataclasses.dataclass
class Position:
    """One position (位置基本信息, §8.18) and its additional items (位置附加信息).

    lat and lon are signed degrees (south and west negative); on the wire they are
    their absolute values in 1e-6 degrees with the south and west status bits.
    `status` holds the other status bits (ACC on and positioned by default); its south
    and west bits are ignored and taken from the signs. altitude_m is metres (WORD, so
    0..65535), speed_kmh is km/h (sent in 0.1 km/h), heading is 0-359 degrees from
    north. `time` must be aware; it is sent in GMT+8. mileage_km, when set, is sent as
    item 0x01 (DWORD in 0.1 km); `items` are further (id, bytes) items, sent as given
    after it. A decoded Position has every item, 0x01 included, in `items`."""

    lat: float
    lon: float
    time: datetime
    altitude_m: int = 0
    speed_kmh: float = 0.0
    heading: int = 0
    alarm: int = 0
    status: int = STATUS_ACC | STATUS_POSITIONED
    mileage_km: float = None
    items: tuple = ()

    BASE_SIZE = 28

    @property
    def lat_e6(self):
        return round(abs(self.lat) * 1e6)

    @property
    def lon_e6(self):
        return round(abs(self.lon) * 1e6)

    def status_word(self):
        status = self.status & ~(STATUS_SOUTH | STATUS_WEST)
        if self.lat < 0:
            status |= STATUS_SOUTH
        if self.lon < 0:
            status |= STATUS_WEST
        return status & 0xFFFFFFFF

    def encode(self):
        if abs(self.lat) > 90 or abs(self.lon) > 180:
            raise ValueError("(%r, %r) is not a position" % (self.lat, self.lon))
        try:
            out = bytearray(struct.pack(
                ">IIIIHHH", self.alarm & 0xFFFFFFFF, self.status_word(), self.lat_e6,
                self.lon_e6, int(self.altitude_m), round(self.speed_kmh * 10),
                int(self.heading)))
        except struct.error:
            raise ValueError("altitude %r m, speed %r km/h or heading %r out of a WORD"
                             % (self.altitude_m, self.speed_kmh, self.heading)) from None
        out += encode_bcd_time(self.time)
        if self.mileage_km is not None:
            out += bytes([ITEM_MILEAGE, 4]) + struct.pack(">I", round(self.mileage_km * 10))
        for item_id, value in self.items:
            value = bytes(value)
            if len(value) > 255:
                raise ValueError("item 0x%02x of %d bytes" % (item_id, len(value)))
            out += bytes([item_id, len(value)]) + value
        return bytes(out)

    @classmethod
    def decode(cls, body):
        """Raises ProtocolError on a body shorter than 28 bytes, a bad time or an item
        that runs past the end."""
        body = bytes(body)
        if len(body) < cls.BASE_SIZE:
            raise ProtocolError("a location of %d bytes (at least 28)" % len(body))
        alarm, status, lat, lon, altitude, speed, heading = struct.unpack_from(">IIIIHHH", body)
        try:
            when = decode_bcd_time(body[22:28])
        except ValueError as e:
            raise ProtocolError("location time: %s" % e) from None
        items, at = [], cls.BASE_SIZE
        mileage = None
        while at < len(body):
            if at + 2 > len(body) or at + 2 + body[at + 1] > len(body):
                raise ProtocolError("an additional item runs past the body at %d" % at)
            item_id, n = body[at], body[at + 1]
            value = body[at + 2:at + 2 + n]
            if item_id == ITEM_MILEAGE and n == 4:
                mileage = struct.unpack(">I", value)[0] / 10
            items.append((item_id, value))
            at += 2 + n
        return cls(lat=(-lat if status & STATUS_SOUTH else lat) / 1e6,
                   lon=(-lon if status & STATUS_WEST else lon) / 1e6, time=when,
                   altitude_m=altitude, speed_kmh=speed / 10, heading=heading, alarm=alarm,
                   status=status, mileage_km=mileage, items=tuple(items))


def batch_body(positions, kind=BATCH_NORMAL):
    """定位数据批量上传 0x0704: count (WORD), type (BYTE: 0 normal, 1 blind-area 补报),
    then per position its body's length (WORD) and the 0x0200 body."""
    items = [p.encode() if isinstance(p, Position) else bytes(p) for p in positions]
    out = bytearray(struct.pack(">HB", len(items), kind))
    for item in items:
        out += struct.pack(">H", len(item)) + item
    return bytes(out)


def decode_batch_body(body):
    """(kind, [Position]) of a 0x0704 body; raises ProtocolError when the count and the
    items do not fill the body exactly."""
    body = bytes(body)
    if len(body) < 3:
        raise ProtocolError("a batch of %d bytes" % len(body))
    count, kind = struct.unpack_from(">HB", body)
    at, positions = 3, []
    for _ in range(count):
        if at + 2 > len(body):
            raise ProtocolError("batch item %d missing" % len(positions))
        (n,) = struct.unpack_from(">H", body, at)
        if at + 2 + n > len(body):
            raise ProtocolError("batch item %d runs past the body" % len(positions))
        positions.append(Position.decode(body[at + 2:at + 2 + n]))
        at += 2 + n
    if at != len(body):
        raise ProtocolError("%d bytes after the batch's %d items" % (len(body) - at, count))
    return kind, positions


@dataclasses.dataclass
class GeneralReply:
    """平台通用应答 0x8001 (§8.2) and 终端通用应答 0x0001 (§8.1): the serial and id of
    the message answered, and the result."""

    reply_serial: int
    reply_id: int
    result: int

    @property
    def ok(self):
        return self.result == RESULT_OK

    def encode(self):
        return struct.pack(">HHB", self.reply_serial, self.reply_id, self.result)

    @classmethod
    def decode(cls, body):
        if len(body) != 5:
            raise ProtocolError("a general reply of %d bytes, not 5" % len(body))
        return cls(*struct.unpack(">HHB", body))


@dataclasses.dataclass
class RegistrationReply:
    """终端注册应答 0x8100 (§8.6): the serial of the registration, the result and, when
    the result is 0, the auth code (鉴权码) to the end of the body, kept as bytes."""

    reply_serial: int
    result: int
    auth_code: bytes = b""

    reply_id = REGISTER

    @property
    def ok(self):
        return self.result == REGISTER_OK

    @property
    def auth_code_text(self):
        return self.auth_code.decode("gbk", errors="replace")

    def encode(self):
        return struct.pack(">HB", self.reply_serial, self.result) + bytes(self.auth_code)

    @classmethod
    def decode(cls, body):
        if len(body) < 3:
            raise ProtocolError("a registration reply of %d bytes" % len(body))
        serial, result = struct.unpack_from(">HB", body)
        return cls(serial, result, bytes(body[3:]))


@dataclasses.dataclass
class ResendRequest:
    """补传分包请求 0x8003 (§8.4): the serial of the first sub-package of the message and
    the indices to send again. The count is a BYTE in 2013; decode() also takes a WORD
    count, told apart by the body's length (3 + 2n bytes with a BYTE, 4 + 2n with a
    WORD), since editions and platforms differ there."""

    first_serial: int
    indices: list

    def encode(self, wide_count=False):
        head = struct.pack(">HH" if wide_count else ">HB", self.first_serial, len(self.indices))
        return head + b"".join(struct.pack(">H", i) for i in self.indices)

    @classmethod
    def decode(cls, body):
        body = bytes(body)
        if len(body) >= 3 and (len(body) - 3) % 2 == 0 and body[2] * 2 == len(body) - 3:
            first, at = struct.unpack_from(">H", body)[0], 3
        elif len(body) >= 4 and struct.unpack_from(">H", body, 2)[0] * 2 == len(body) - 4:
            first, at = struct.unpack_from(">H", body)[0], 4
        else:
            raise ProtocolError("a resend request of %d bytes" % len(body))
        return cls(first, [struct.unpack_from(">H", body, i)[0] for i in range(at, len(body), 2)])


def decode_reply(message):
    """The reply carried by a platform Message (0x8001 or 0x8100), else None."""
    if message.msg_id == PLATFORM_REPLY:
        return GeneralReply.decode(message.body)
    if message.msg_id == REGISTER_REPLY:
        return RegistrationReply.decode(message.body)
    return None


# ---------------------------------------------------------------------------
# deliberately bad input, and payloads that exercise every escape


def frame_with_bad_check(packet):
    """A frame whose check code is wrong (the right one with every bit flipped; still
    escaped, so that only the check code is wrong)."""
    return seal(packet, check=check_code(packet) ^ 0xFF)


def frame_with_bad_escape(packet, at=None):
    """A frame with 0x7d 0x03 (an escape the standard does not define) inserted in the
    escaped content, by default right after the header's first two bytes."""
    good = seal(packet)
    at = 3 if at is None else at
    return good[:at] + b"\x7d\x03" + good[at:]


def frame_with_wrong_length(message, delta=1):
    """A frame whose header states a body length `delta` bytes longer than the body
    (the check code is right, so only the length is wrong)."""
    return dataclasses.replace(message, length=len(message.body) + delta).frame()


def garbage(size, seed=None, flags=True):
    """`size` random bytes; with flags=False they hold no 0x7e (so that they cannot
    end a frame). Deterministic for a given seed."""
    rng = random.Random(seed)
    data = bytes(rng.getrandbits(8) for _ in range(size))
    return data if flags else data.replace(b"\x7e", b"\x7f")


def find_check_code(target, build, candidates):
    """The first candidate c whose packet build(c) (header + body, unescaped) has the
    check code `target`, as (c, packet); raises ValueError when none does. Use it to
    make a frame whose check code is 0x7e or 0x7d and so has to be escaped."""
    for candidate in candidates:
        packet = build(candidate)
        if check_code(packet) == target:
            return candidate, packet
    raise ValueError("no candidate gives check code 0x%02x" % target)


def position_with_check_code(position, target, phone, serial, version=2013):
    """A copy of `position` whose heading is chosen (0..255 covers every low byte, so
    one always fits) so that its 0x0200 packet from `phone` with `serial` has check
    code `target`."""
    def build(heading):
        body = dataclasses.replace(position, heading=heading).encode()
        return Message(LOCATION, phone, serial, body, version).packet()

    heading, _ = find_check_code(target, build, range(256))
    return dataclasses.replace(position, heading=heading)


# ---------------------------------------------------------------------------
# the terminal


class Terminal:
    """One JT/T 808 terminal over one TCP connection at a time, on asyncio.

    Use it from one event loop (it is not thread-safe). It owns its connection and a
    reader task that decodes everything the platform sends: replies (0x8001, 0x8100)
    are matched to the serial they answer; a resend request (0x8003) is served from
    the sub-packages kept of the last messages sent; any other platform message goes
    to `inbox` and, when answer_platform is true, is answered 0x0001 with result 3
    (不支持). Frames that do not decode are kept in `bad_frames` as (bytes, reason).

    Serials start at 0 and go up by one per packet (§4.4.3: 按发送顺序从 0 开始循环累加);
    set `serial` to choose the next one. Methods that send and wait return the reply
    whatever its result (check `.ok`); they raise ReplyTimeout when none comes in
    `reply_timeout` seconds, ConnectionClosed when the connection is gone, and
    ProtocolError when the reply names another message id than the one sent.

    A body longer than `max_body` (at most 1023, the length field's range) is sent in
    sub-packages. §7.12 lets a platform answer sub-packages with one reply or with one
    per packet; `split_reply` says which reply ends the wait: "last" (the reply to the
    last packet: per-packet platforms, and single-reply platforms that name the last
    serial), "first" (a single reply naming the first serial) or "each" (every packet
    answered; the first failure or the last reply is returned)."""

    def __init__(self, host, port, phone, *, version=2013, registration=None,
                 auth_code=None, imei="", software_version="pingma-sim 1",
                 reply_timeout=10.0, max_body=MAX_BODY, split_reply="last",
                 answer_platform=True):
        if version not in VERSIONS:
            raise ValueError("version is 2013 or 2019")
        bcd_encode(phone, PHONE_BYTES[version])  # raises when it does not fit
        if split_reply not in ("last", "first", "each"):
            raise ValueError("split_reply is last, first or each")
        self.host, self.port, self.phone, self.version = host, port, str(phone), version
        # Plate colour 0 (未上牌): the last field is then the vehicle's VIN, here a
        # made-up one; the registry knows a terminal's vehicle by its phone.
        self.registration = registration or Registration(
            maker="PINGM", model="PINGMA-SIM", terminal_id=str(phone)[-7:], plate_colour=0,
            plate=("PINGMA" + str(phone))[-17:])
        self.auth_code = (auth_code.encode("gbk") if isinstance(auth_code, str)
                          else auth_code)
        self.imei = imei or str(phone)[-15:].rjust(15, "0")
        self.software_version = software_version
        self.reply_timeout = reply_timeout
        self.max_body = max_body
        self.split_reply = split_reply
        self.answer_platform = answer_platform
        self.serial = 0
        self.authenticated = False
        self.inbox = asyncio.Queue()
        self.bad_frames = []
        self._reader = self._writer = self._task = None
        self._waiters = {}  # serial -> Future of the reply
        self._early = {}  # serial -> reply that came before anyone waited
        self._split_sent = collections.OrderedDict()  # first serial -> [frames]
        self._splitter = FrameSplitter()
        self._reassembler = Reassembler()

    # -- connection

    @property
    def connected(self):
        return self._writer is not None and not self._writer.is_closing()

    async def connect(self, timeout=None):
        """Opens the TCP connection and starts reading. Raises OSError (or TimeoutError)
        when the platform cannot be reached."""
        if self.connected:
            raise RuntimeError("already connected")
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port),
            self.reply_timeout if timeout is None else timeout)
        self._splitter = FrameSplitter()
        self._reassembler = Reassembler()
        self.authenticated = False
        self._task = asyncio.get_running_loop().create_task(self._read_loop(self._reader))

    async def close(self):
        """Closes the connection (no logout: see logout()); pending waits raise
        ConnectionClosed. Safe to call twice."""
        writer, task = self._writer, self._task
        self._writer = self._reader = self._task = None
        self.authenticated = False
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, asyncio.CancelledError):
                pass
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._fail_waiters(ConnectionClosed("closed"))

    async def reconnect(self):
        """Closes, connects again and authenticates with the saved auth code (a
        registered terminal authenticates first thing on every new connection, and
        sends nothing else before). Returns the authentication's reply."""
        await self.close()
        await self.connect()
        return await self.authenticate()

    # -- sending

    def take_serial(self):
        """The next serial, consumed."""
        serial = self.serial & 0xFFFF
        self.serial = (serial + 1) & 0xFFFF
        self._early.pop(serial, None)
        return serial

    def message(self, msg_id, body=b"", serial=None):
        """A Message from this terminal (its phone and version), taking the next serial
        unless one is given."""
        serial = self.take_serial() if serial is None else serial
        return Message(msg_id, self.phone, serial, bytes(body), self.version)

    async def send_raw(self, data):
        """Writes bytes as they are (frames built by hand, bad frames, garbage)."""
        if not self.connected:
            raise ConnectionClosed("not connected")
        self._writer.write(data)
        await self._writer.drain()

    async def send(self, msg_id, body=b""):
        """Sends one message, in sub-packages when its body is longer than max_body,
        without waiting; returns the serials used. Waiters are set up before the bytes
        leave, so a reply cannot be missed."""
        if not self.connected:
            raise ConnectionClosed("not connected")
        body = bytes(body)
        if len(body) <= self.max_body:
            messages = [self.message(msg_id, body)]
        else:
            first = self.serial & 0xFFFF
            messages = split_message(msg_id, body, self.phone, first, self.version,
                                     self.max_body)
            for m in messages:
                self.take_serial()
        frames = [m.frame() for m in messages]
        serials = [m.serial for m in messages]
        loop = asyncio.get_running_loop()
        for serial in serials:
            if serial not in self._waiters or self._waiters[serial].done():
                self._waiters[serial] = loop.create_future()
        if len(messages) > 1:
            self._split_sent[serials[0]] = frames
            while len(self._split_sent) > 16:
                self._split_sent.popitem(last=False)
        await self.send_raw(b"".join(frames))
        return serials

    async def wait_reply(self, serial, timeout=None):
        """The reply (GeneralReply or RegistrationReply) to the packet sent with
        `serial`. Raises ReplyTimeout or ConnectionClosed. A reply that comes after its
        wait timed out is kept, and a later wait for the same serial returns it."""
        if serial in self._early:
            return self._early.pop(serial)
        future = self._waiters.get(serial)
        if future is None or future.done() and (future.cancelled()
                                                or future.exception() is not None):
            if not self.connected:
                raise ConnectionClosed("not connected")
            future = self._waiters[serial] = asyncio.get_running_loop().create_future()
        timeout = self.reply_timeout if timeout is None else timeout
        timer = None
        if not future.done():
            timer = asyncio.get_running_loop().call_later(
                timeout, self._expire, future,
                "no reply to serial %d in %.1f s" % (serial, timeout))
        try:
            return await future
        finally:
            if timer is not None:
                timer.cancel()
            if self._waiters.get(serial) is future and future.done():
                del self._waiters[serial]

    @staticmethod
    def _expire(future, text):
        if not future.done():
            future.set_exception(ReplyTimeout(text))

    async def wait_message_reply(self, serials, timeout=None):
        """The reply that answers a message sent as `serials` (one, or its
        sub-packages), by `split_reply`."""
        if len(serials) == 1 or self.split_reply == "last":
            return await self.wait_reply(serials[-1], timeout)
        if self.split_reply == "first":
            return await self.wait_reply(serials[0], timeout)
        replies = [await self.wait_reply(s, timeout) for s in serials]
        return next((r for r in replies if not r.ok), replies[-1])

    async def request(self, msg_id, body=b"", timeout=None):
        """Sends a message and returns its reply; raises ProtocolError when the reply
        names another message id."""
        serials = await self.send(msg_id, body)
        reply = await self.wait_message_reply(serials, timeout)
        if reply.reply_id != msg_id:
            raise ProtocolError("0x%04x serial %d answered as if it were 0x%04x"
                                % (msg_id, serials[-1], reply.reply_id))
        return reply

    # -- the messages

    async def register(self):
        """终端注册: sends 0x0100 and returns the reply, a RegistrationReply (a
        GeneralReply if the platform answered 0x8001 instead); on success the auth code
        is kept in `auth_code`."""
        reply = await self.request(REGISTER, self.registration.encode(self.version))
        if isinstance(reply, RegistrationReply) and reply.ok:
            self.auth_code = reply.auth_code
        return reply

    async def authenticate(self, code=None):
        """终端鉴权 0x0102 with `code` or the saved auth code; returns the GeneralReply."""
        code = self.auth_code if code is None else code
        if code is None:
            raise ValueError("no auth code: register first or give one")
        body = Authentication(code, self.imei, self.software_version).encode(self.version)
        reply = await self.request(AUTHENTICATE, body)
        self.authenticated = reply.ok
        return reply

    async def heartbeat(self):
        """终端心跳 0x0002 (empty body)."""
        return await self.request(HEARTBEAT)

    async def logout(self):
        """终端注销 0x0003 (empty body): the platform forgets the terminal; register
        again before the next authentication."""
        return await self.request(LOGOUT)

    async def report(self, position):
        """位置信息汇报 0x0200."""
        return await self.request(LOCATION, position.encode())

    async def report_batch(self, positions, kind=BATCH_NORMAL):
        """定位数据批量上传 0x0704, in sub-packages when longer than max_body."""
        return await self.request(LOCATION_BATCH, batch_body(positions, kind))

    # -- bad frames

    def bad_frame(self, kind, msg_id=HEARTBEAT, body=b""):
        """(serial, bytes) of a deliberately bad frame from this terminal, taking a
        serial: kind "check" (wrong check code), "escape" (0x7d 0x03), "length" (the
        header says one byte more than the body has) or "half" (the first half of a
        good frame, no closing flag)."""
        message = self.message(msg_id, body)
        if kind == "check":
            data = frame_with_bad_check(message.packet())
        elif kind == "escape":
            data = frame_with_bad_escape(message.packet())
        elif kind == "length":
            data = frame_with_wrong_length(message)
        elif kind == "half":
            frame = message.frame()
            data = frame[:len(frame) // 2]
        else:
            raise ValueError("kind is check, escape, length or half")
        return message.serial, data

    async def send_half_frame_and_close(self, msg_id=LOCATION, body=None):
        """Sends the first half of a frame (a location report unless told otherwise)
        and closes the connection, as a terminal that loses power mid-send."""
        if body is None:
            body = Position(0.0, 0.0, datetime.now(timezone.utc)).encode()
        _, data = self.bad_frame("half", msg_id, body)
        await self.send_raw(data)
        await self.close()

    # -- receiving

    async def _read_loop(self, reader):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for content in self._splitter.feed(data):
                    self._on_frame(content)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if self._reader is reader:  # the platform closed it, not close()
                if self._writer is not None:
                    self._writer.close()
                self._fail_waiters(ConnectionClosed("the platform closed the connection"))

    def _on_frame(self, content):
        try:
            message = decode_frame(content)
            whole = self._reassembler.add(message)
        except FrameError as e:
            self.bad_frames.append((content, str(e)))
            return
        if whole is not None:
            self._on_message(whole)

    def _on_message(self, message):
        try:
            reply = decode_reply(message)
            if message.msg_id == RESEND_REQUEST:
                self._resend(ResendRequest.decode(message.body))
                return
        except ProtocolError as e:
            self.bad_frames.append((message.frame(), str(e)))
            return
        if reply is None:
            self.inbox.put_nowait(message)
            if self.answer_platform and self.connected:
                answer = GeneralReply(message.serial, message.msg_id, RESULT_UNSUPPORTED)
                self._writer.write(self.message(TERMINAL_REPLY, answer.encode()).frame())
            return
        future = self._waiters.get(reply.reply_serial)
        if future is not None and not future.done():
            future.set_result(reply)
        else:
            self._early[reply.reply_serial] = reply

    def _resend(self, request):
        frames = self._split_sent.get(request.first_serial)
        if frames is None or not self.connected:
            return
        for index in request.indices:
            if 1 <= index <= len(frames):
                self._writer.write(frames[index - 1])

    def _fail_waiters(self, error):
        for future in self._waiters.values():
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: no "never retrieved" warning
        self._waiters.clear()


# ---------------------------------------------------------------------------
# the command line


def raise_open_files_limit():
    """Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the new soft limit
    (None where the resource module is missing)."""
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def parse_track(text):
    """Positions' (lat, lon) from "lat,lon;lat,lon;..."."""
    points = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        lat, lon = (float(v) for v in part.split(","))
        points.append({"lat": lat, "lon": lon})
    return points


def read_positions(path):
    """Points from a file: one per line, either JSON ({"lat", "lon", and optionally
    "speed_kmh", "heading", "altitude_m", "mileage_km", "time": RFC 3339}) or
    "lat,lon"; blank lines and lines starting with # are skipped."""
    points = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("{"):
                points.append(json.loads(line))
            else:
                try:
                    lat, lon = (float(v) for v in line.split(",")[:2])
                except ValueError:
                    raise SystemExit("%s:%d: not lat,lon nor JSON" % (path, n)) from None
                points.append({"lat": lat, "lon": lon})
    return points


def position_of(point, now):
    """A Position from a point of a track or positions file, at `now` unless it has its
    own time."""
    when = point.get("time")
    when = datetime.fromisoformat(when.replace("Z", "+00:00")) if when else now
    return Position(lat=float(point["lat"]), lon=float(point["lon"]), time=when,
                    altitude_m=int(point.get("altitude_m", 0)),
                    speed_kmh=float(point.get("speed_kmh", 0)),
                    heading=int(point.get("heading", 0)),
                    mileage_km=point.get("mileage_km"))


def reply_json(reply):
    if reply is None:
        return {}
    out = {"reply_serial": reply.reply_serial, "reply_id": "0x%04x" % reply.reply_id,
           "result": reply.result, "ok": reply.ok}
    if isinstance(reply, RegistrationReply) and reply.ok:
        out["auth_code"] = reply.auth_code_text
    return out


def print_json(obj):
    print(json.dumps(obj, ensure_ascii=False, sort_keys=True), flush=True)


async def run_command(args):
    """Drives one terminal: connect, register unless given a code, authenticate, report
    each point (one JSON line per reply), optionally log out."""
    points = read_positions(args.positions) if args.positions else parse_track(args.track)
    if not points:
        raise SystemExit("no positions")
    term = Terminal(args.host, args.port, args.phone, version=args.version,
                    auth_code=args.auth_code, reply_timeout=args.timeout,
                    split_reply=args.split_reply)
    failed = 0

    async def step(event, coro, **extra):
        nonlocal failed
        started = time.perf_counter()
        try:
            reply = await coro
        except (ReplyTimeout, ConnectionClosed, ProtocolError) as e:
            failed += 1
            print_json({"event": event, "error": "%s: %s" % (type(e).__name__, e), **extra})
            return None
        if not reply.ok:
            failed += 1
        print_json({"event": event, "latency_ms": round((time.perf_counter() - started) * 1e3, 3),
                    **reply_json(reply), **extra})
        return reply

    try:
        await term.connect()
        if term.auth_code is None:
            reply = await step("register", term.register())
            if reply is None or not reply.ok:
                return 1
        reply = await step("authenticate", term.authenticate())
        if reply is None or not reply.ok:
            return 1
        for i in range(0, len(points), args.batch):
            if i:
                await asyncio.sleep(args.interval)
            now = datetime.now(timezone.utc)
            chunk = [position_of(p, now) for p in points[i:i + args.batch]]
            if args.batch == 1:
                await step("location", term.report(chunk[0]),
                           lat=chunk[0].lat, lon=chunk[0].lon)
            else:
                await step("location_batch", term.report_batch(chunk), positions=len(chunk))
            while not term.inbox.empty():
                m = term.inbox.get_nowait()
                print_json({"event": "platform_message", "msg_id": "0x%04x" % m.msg_id,
                            "serial": m.serial, "body": m.body.hex()})
        if args.logout:
            await step("logout", term.logout())
    except OSError as e:
        print_json({"event": "connect", "error": str(e)})
        return 1
    finally:
        for content, reason in term.bad_frames:
            print_json({"event": "bad_frame", "reason": reason, "bytes": content.hex()})
        await term.close()
    return 1 if failed else 0


def read_auth_codes(path):
    """{phone: bytes} from a JSON object whose values are the code as text (GBK) or
    {"hex": "..."}."""
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    return {normalize_phone(phone): (bytes.fromhex(v["hex"]) if isinstance(v, dict)
                                     else v.encode("gbk"))
            for phone, v in raw.items()}


def write_auth_codes(path, codes):
    out = {}
    for phone, code in codes.items():
        try:
            out[phone] = code.decode("gbk")
            if out[phone].encode("gbk") != code:
                raise UnicodeError
        except UnicodeError:
            out[phone] = {"hex": code.hex()}
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=0, sort_keys=True)
    os.replace(tmp, path)


def percentile(sorted_values, p):
    """The nearest-rank p-th percentile of sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def swarm_phones(prefix, count, first):
    """count phone numbers: prefix + index, the index zero-padded so that the number
    has at least 11 digits."""
    width = max(len(str(first + count - 1)), 11 - len(prefix))
    return [prefix + str(first + i).zfill(width) for i in range(count)]


async def swarm_terminals(args, first, count, codes, barrier=None):
    """One process's share of a swarm: terminals first..first+count-1 opened at once and
    brought to authenticated; then, once every one is ready (and, with `barrier`, every
    other process's too, so that the measurement is made with all of them connected),
    each sends its reports as fast as its replies come. Returns the raw counts."""
    phones = swarm_phones(args.phone_prefix, args.terminals, args.first)[
        first - args.first:first - args.first + count]
    terminals = [Terminal(args.host, args.port, phone, version=args.version,
                          auth_code=codes.get(normalize_phone(phone)),
                          reply_timeout=args.timeout, split_reply=args.split_reply)
                 for phone in phones]
    totals = collections.Counter()
    errors = collections.Counter()
    latencies = []
    gate = asyncio.Semaphore(args.connect_concurrency or len(terminals) or 1)

    async def set_up(term):
        async with gate:
            try:
                await term.connect()
                totals["connected"] += 1
                if term.auth_code is None:
                    reply = await term.register()
                    if not reply.ok:
                        errors["registration result %d" % reply.result] += 1
                        return False
                    totals["registered"] += 1
                reply = await term.authenticate()
                if not reply.ok:
                    errors["authentication result %d" % reply.result] += 1
                    return False
                totals["authenticated"] += 1
                return True
            except (OSError, ReplyTimeout, ConnectionClosed, ProtocolError) as e:
                errors["set-up: %s" % type(e).__name__] += 1
                return False

    setup_started = time.monotonic()
    ready = await asyncio.gather(*(set_up(t) for t in terminals))
    setup_s = time.monotonic() - setup_started
    if barrier is not None:
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
    # Every report of a terminal has its own time, one second apart and ending now, so
    # that none is a duplicate of another.
    start_time = datetime.now(timezone.utc) - timedelta(seconds=args.reports + 1)

    async def report_all(index, term):
        # Each terminal walks north-east from its own point near (--lat, --lon).
        base_lat = args.lat + (index % 100) * 0.001
        base_lon = args.lon + (index // 100) * 0.001
        positions = [Position(base_lat + k * 1e-5, base_lon + k * 1e-5,
                              start_time + timedelta(seconds=k), speed_kmh=36.0,
                              heading=45, mileage_km=1000 + k / 100)
                     for k in range(args.reports)]
        for at in range(0, len(positions), args.batch):
            chunk = positions[at:at + args.batch]
            started = time.monotonic()
            try:
                if args.batch == 1:
                    reply = await term.report(chunk[0])
                else:
                    reply = await term.report_batch(chunk)
            except ReplyTimeout:
                totals["messages_sent"] += 1
                totals["reports_sent"] += len(chunk)
                totals["timeouts"] += 1
                continue
            except (ConnectionClosed, ProtocolError, OSError) as e:
                errors["report: %s" % type(e).__name__] += 1
                return
            latencies.append(time.monotonic() - started)
            totals["messages_sent"] += 1
            totals["reports_sent"] += len(chunk)
            if reply.ok:
                totals["replies_ok"] += 1
                totals["reports_ok"] += len(chunk)
            else:
                totals["replies_failed"] += 1
                errors["report result %d" % reply.result] += 1

    started = time.monotonic()
    await asyncio.gather(*(report_all(first - args.first + i, t) for i, (t, ok) in
                           enumerate(zip(terminals, ready)) if ok))
    ended = time.monotonic()
    totals["connected_at_end"] = sum(1 for t in terminals if t.connected)
    await asyncio.gather(*(t.close() for t in terminals))
    return {"totals": totals, "errors": errors, "latencies": latencies, "started": started,
            "ended": ended, "setup_s": setup_s,
            "auth_codes": {t.phone: t.auth_code for t in terminals if t.auth_code}}


def _swarm_worker(args, first, count, codes, barrier, results):
    """A worker process's body (multiprocessing, fork): its share, its counts put on
    `results`."""
    try:
        results.put(asyncio.run(swarm_terminals(args, first, count, codes, barrier)))
    except BaseException as e:  # the parent must hear of it, not wait for it
        barrier.abort()
        results.put({"failed": "%s: %s" % (type(e).__name__, e)})


def swarm_command(args):
    """The swarm: in this process, or spread over --processes worker processes (the
    simulator is single-threaded Python, and one process may be the bottleneck before
    the platform is). Prints one JSON line of totals; 0 when every report was answered
    0, else 1."""
    nofile = raise_open_files_limit()
    codes = read_auth_codes(args.auth_codes) if args.auth_codes else {}
    processes = max(1, min(args.processes, args.terminals))
    if processes == 1:
        parts = [asyncio.run(swarm_terminals(args, args.first, args.terminals, codes))]
    else:
        import multiprocessing
        context = multiprocessing.get_context("fork")
        barrier = context.Barrier(processes)
        results = context.Queue()
        shares = [args.terminals // processes + (1 if i < args.terminals % processes else 0)
                  for i in range(processes)]
        workers, first = [], args.first
        for share in shares:
            workers.append(context.Process(
                target=_swarm_worker, args=(args, first, share, codes, barrier, results)))
            first += share
        for w in workers:
            w.start()
        parts = [results.get() for _ in workers]
        for w in workers:
            w.join()
        failed = [p["failed"] for p in parts if "failed" in p]
        if failed:
            print_json({"error": "a worker failed", "workers": failed})
            return 1
    if args.save_auth_codes:
        codes_out = {}
        for part in parts:
            codes_out.update(part["auth_codes"])
        write_auth_codes(args.save_auth_codes, codes_out)
    summary = swarm_summary(args, parts)
    summary["open_files_limit"] = nofile
    summary["processes"] = processes
    print_json(summary)
    return 0 if summary["reports_ok"] == args.terminals * args.reports and not summary[
        "errors"] else 1


def swarm_summary(args, parts):
    """The totals of the parts of a swarm: counts summed, errors merged, the elapsed
    time from the first part's start of reporting to the last one's end, the reply
    latencies' percentiles over every reply."""
    totals, errors, latencies = collections.Counter(), collections.Counter(), []
    for part in parts:
        totals.update(part["totals"])
        errors.update(part["errors"])
        latencies += part["latencies"]
    elapsed = max(p["ended"] for p in parts) - min(p["started"] for p in parts)
    latencies.sort()

    def ms(seconds):
        return None if seconds is None else round(seconds * 1e3, 3)

    def rate(n):
        return round(n / elapsed, 1) if elapsed > 0 else None

    return {
        "terminals": args.terminals, "version": args.version, "batch": args.batch,
        "connected": totals["connected"], "registered": totals["registered"],
        "authenticated": totals["authenticated"],
        "connected_at_end": totals["connected_at_end"],
        "messages_sent": totals["messages_sent"], "reports_sent": totals["reports_sent"],
        "replies_ok": totals["replies_ok"], "replies_failed": totals["replies_failed"],
        "reports_ok": totals["reports_ok"], "timeouts": totals["timeouts"],
        "errors": dict(errors), "setup_s": round(max(p["setup_s"] for p in parts), 3),
        "elapsed_s": round(elapsed, 3), "reports_per_s": rate(totals["reports_ok"]),
        "messages_per_s": rate(totals["replies_ok"]),
        "latency_p50_ms": ms(percentile(latencies, 50)),
        "latency_p99_ms": ms(percentile(latencies, 99)),
        "latency_max_ms": ms(latencies[-1] if latencies else None),
    }


def decode_command(args):
    """Decodes frames given in hex (arguments, or lines of stdin) and prints one JSON
    line each."""
    sources = args.frames or [line for line in sys.stdin.read().split() if line]
    status = 0
    for text in sources:
        try:
            data = bytes.fromhex(text.replace(" ", ""))
        except ValueError as e:
            print_json({"input": text, "error": str(e)})
            status = 1
            continue
        # Flags are optional around a single frame.
        frames = FrameSplitter().feed(b"\x7e" + data.strip(b"\x7e") + b"\x7e")
        for content in frames:
            try:
                m = decode_frame(content)
            except FrameError as e:
                print_json({"input": text, "error": str(e)})
                status = 1
                continue
            out = {"msg_id": "0x%04x" % m.msg_id, "name": m.name, "version": m.version,
                   "phone": m.phone, "serial": m.serial, "package": m.package,
                   "encryption": m.encryption, "body": m.body.hex()}
            try:
                out.update(describe_body(m))
            except (ProtocolError, ValueError) as e:
                out["body_error"] = str(e)
            print_json(out)
    return status


def describe_body(m):
    """The fields of the bodies this module knows, for `decode`."""
    if m.package is not None and m.package[0] > 1:
        return {}
    if m.msg_id in (PLATFORM_REPLY, TERMINAL_REPLY):
        return reply_json(GeneralReply.decode(m.body))
    if m.msg_id == REGISTER_REPLY:
        return reply_json(RegistrationReply.decode(m.body))
    if m.msg_id == REGISTER:
        return {"registration": dataclasses.asdict(Registration.decode(m.body, m.version))}
    if m.msg_id == AUTHENTICATE:
        a = Authentication.decode(m.body, m.version)
        return {"auth_code": a.code.decode("gbk", errors="replace"), "imei": a.imei,
                "software_version": a.software_version}
    if m.msg_id == LOCATION:
        return {"position": position_json(Position.decode(m.body))}
    if m.msg_id == LOCATION_BATCH:
        kind, positions = decode_batch_body(m.body)
        return {"kind": kind, "positions": [position_json(p) for p in positions]}
    return {}


def position_json(p):
    return {"lat": p.lat, "lon": p.lon, "time": p.time.isoformat(), "altitude_m": p.altitude_m,
            "speed_kmh": p.speed_kmh, "heading": p.heading, "alarm": p.alarm,
            "status": p.status, "mileage_km": p.mileage_km,
            "items": [[i, v.hex()] for i, v in p.items]}


def build_parser():
    parser = argparse.ArgumentParser(
        description="A JT/T 808 (2013/2019) in-vehicle terminal simulator for pingma's "
                    "tests and benchmarks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p):
        p.add_argument("--host", default="127.0.0.1", help="the platform's address")
        p.add_argument("--port", type=int, required=True, help="the platform's JT/T 808 port")
        p.add_argument("--version", type=int, choices=VERSIONS, default=2013,
                       help="protocol edition (default 2013)")
        p.add_argument("--timeout", type=float, default=10.0,
                       help="seconds to wait for each reply (default 10)")
        p.add_argument("--split-reply", choices=("last", "first", "each"), default="last",
                       help="which reply answers a sub-packaged message (default last)")

    run = commands.add_parser(
        "run", help="drive one terminal along a track",
        description="Connect, register (unless --auth-code), authenticate and report each "
                    "position; prints one JSON line per reply. Exit status 1 when any "
                    "reply failed or did not come.")
    common(run)
    run.add_argument("--phone", required=True, help="the terminal's phone number")
    where = run.add_mutually_exclusive_group(required=True)
    where.add_argument("--positions", metavar="FILE",
                       help='a file of positions, one a line: "lat,lon" or JSON '
                            '{"lat", "lon", "speed_kmh", "heading", "altitude_m", '
                            '"mileage_km", "time"}')
    where.add_argument("--track", metavar='"LAT,LON;..."', help="positions inline")
    run.add_argument("--interval", type=float, default=1.0,
                     help="seconds between reports (default 1)")
    run.add_argument("--batch", type=int, default=1,
                     help="positions per 0x0704 batch; 1 sends 0x0200 (default 1)")
    run.add_argument("--auth-code", help="skip registration and authenticate with this code")
    run.add_argument("--logout", action="store_true", help="send 0x0003 at the end")

    swarm = commands.add_parser(
        "swarm", help="many terminals at once (the benchmark)",
        description="Open --terminals connections at once (the open-files limit raised to "
                    "its hard limit), register and authenticate each (or take auth codes "
                    "from a file), then, with all connected, send --reports positions "
                    "per terminal, each message as soon as the last was answered. Prints "
                    "one JSON line of totals; exit status 1 unless every report was "
                    "answered 0.")
    common(swarm)
    swarm.add_argument("--terminals", type=int, default=1000, help="how many (default 1000)")
    swarm.add_argument("--reports", type=int, default=10,
                       help="positions per terminal (default 10)")
    swarm.add_argument("--batch", type=int, default=1,
                       help="positions per 0x0704 batch; 1 sends 0x0200 (default 1)")
    swarm.add_argument("--phone-prefix", default="1390000",
                       help="phones are the prefix + a zero-padded index (default 1390000)")
    swarm.add_argument("--first", type=int, default=1, help="the first index (default 1)")
    swarm.add_argument("--auth-codes", metavar="FILE",
                       help="JSON {phone: code}: authenticate with these, register the rest")
    swarm.add_argument("--save-auth-codes", metavar="FILE",
                       help="write every terminal's auth code here after set-up")
    swarm.add_argument("--connect-concurrency", type=int, default=0,
                       help="at most this many set-ups at a time in each process (default "
                            "0: all at once)")
    swarm.add_argument("--processes", type=int, default=1,
                       help="spread the terminals over this many worker processes, all "
                            "connected before any reports (default 1)")
    swarm.add_argument("--lat", type=float, default=38.04, help="base latitude")
    swarm.add_argument("--lon", type=float, default=114.51, help="base longitude")

    decode = commands.add_parser(
        "decode", help="decode frames given in hex",
        description="Decode frames (hex, with or without the 0x7e flags; several frames "
                    "in one argument are split) and print one JSON line each.")
    decode.add_argument("frames", nargs="*", help="hex; read from stdin when none")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if getattr(args, "batch", 1) < 1:
        raise SystemExit("--batch is at least 1")
    if args.command == "decode":
        return decode_command(args)
    if args.command == "run":
        return asyncio.run(run_command(args))
    return swarm_command(args)


if __name__ == "__main__":
    sys.exit(main())
