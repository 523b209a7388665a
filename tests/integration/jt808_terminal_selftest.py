"""Self-test of jt808_terminal.py, the JT/T 808 terminal simulator (standard library only).

Run: python3 jt808_terminal_selftest.py [unittest args]

The codec is checked against vectors written out by hand from the standard (the
escaping example of §4.4.2, heartbeat frames of both editions byte for byte, a location
report whose serial, body and check code all need escaping), then the Terminal class
talks over real sockets to a minimal fake platform started inside the test (an asyncio
server that answers 0x8100 and 0x8001), and the command line is run as a program
against the same fake platform in a thread, 1,000 terminals at once included. The fake
platform is this test's, written for it: the registry's gateway is tested elsewhere,
with this simulator as its peer. No test asserts a time.
"""

import asyncio
import dataclasses
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import unittest
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jt808_terminal as jt  # noqa: E402

PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jt808_terminal.py")
PHONE = "13800000001"
UTC = timezone.utc
# An auth code with both bytes that must be escaped ('~' is 0x7e, '}' is 0x7d), so that
# the terminal's decoding of the platform's 0x8100 is exercised on escapes too.
AUTH_CODE = b"A~}B"
# Coordinates whose 1e-6-degree values hold 0x7e and 0x7d: 25.066878 is 0x017e7d7e and
# 108.887677 is 0x067d7e7d.
ESCAPE_LAT, ESCAPE_LON = 25.066878, 108.887677


def h(text):
    """Bytes from hex written with spaces."""
    return bytes.fromhex(text.replace(" ", ""))


# ---------------------------------------------------------------------------
# the codec, by hand


class EscapingTest(unittest.TestCase):
    def test_the_standards_example(self):
        # §4.4.2: 0x30 0x7e 0x08 0x7d 0x55 is sent as 0x30 0x7d 0x02 0x08 0x7d 0x01 0x55.
        self.assertEqual(jt.escape(h("30 7e 08 7d 55")), h("30 7d 02 08 7d 01 55"))
        self.assertEqual(jt.unescape(h("30 7d 02 08 7d 01 55")), h("30 7e 08 7d 55"))

    def test_table(self):
        rows = [  # raw, escaped
            ("", ""),
            ("7e", "7d 02"),
            ("7d", "7d 01"),
            ("7d 02", "7d 01 02"),  # an escaped-looking pair is escaped again
            ("7d 01", "7d 01 01"),
            ("7e 7e", "7d 02 7d 02"),
            ("7d 7e 7d", "7d 01 7d 02 7d 01"),
            ("00 01 02 7c 7f ff", "00 01 02 7c 7f ff"),
        ]
        for raw, escaped in rows:
            with self.subTest(raw=raw):
                self.assertEqual(jt.escape(h(raw)), h(escaped))
                self.assertEqual(jt.unescape(h(escaped)), h(raw))

    def test_bad_escapes_refused(self):
        for bad in ("7d 03", "7d 00", "7d 7d", "30 7d", "7d", "30 7e 30"):
            with self.subTest(bad=bad), self.assertRaises(jt.FrameError):
                jt.unescape(h(bad))

    def test_random_round_trip(self):
        rng = random.Random(808)
        for _ in range(200):
            data = bytes(rng.choice((0x7D, 0x7E, 0x01, 0x02, rng.getrandbits(8)))
                         for _ in range(rng.randrange(40)))
            self.assertNotIn(0x7E, jt.escape(data))
            self.assertEqual(jt.unescape(jt.escape(data)), data)


class FrameTest(unittest.TestCase):
    def test_2013_heartbeat_by_hand(self):
        # 0x0002, properties 0 (empty body), phone 13800000001 as BCD[6] 01 38 00 00 00 01,
        # serial 1. Check code: 02 ^ 01 ^ 38 ^ 01 ^ 01 = 3b.
        frame = h("7e 00 02 00 00 01 38 00 00 00 01 00 01 3b 7e")
        self.assertEqual(jt.Message(jt.HEARTBEAT, PHONE, 1).frame(), frame)
        m = jt.decode_frame(frame)
        self.assertEqual((m.msg_id, m.phone, m.serial, m.body, m.version, m.package),
                         (jt.HEARTBEAT, "013800000001", 1, b"", 2013, None))

    def test_2019_heartbeat_by_hand(self):
        # Properties 0x4000 (bit 14: the 2019 header), protocol version 1, the phone as
        # BCD[10] 00 00 00 00 01 38 00 00 00 01, serial 1.
        # Check code: 02 ^ 40 ^ 01 ^ 01 ^ 38 ^ 01 ^ 01 = 7a.
        frame = h("7e 00 02 40 00 01 00 00 00 00 01 38 00 00 00 01 00 01 7a 7e")
        self.assertEqual(jt.Message(jt.HEARTBEAT, PHONE, 1, version=2019).frame(), frame)
        m = jt.decode_frame(frame)
        self.assertEqual((m.version, m.protocol_version, m.phone, m.serial),
                         (2019, 1, "00000000013800000001", 1))
        self.assertEqual(jt.normalize_phone(m.phone), PHONE)

    def test_escapes_in_the_serial_and_the_check_code_by_hand(self):
        # Serial 0x7e7d: both bytes escaped. Check code 3a ^ 7e ^ 7d = 39
        # (3a: the XOR of the header without its serial).
        self.assertEqual(jt.Message(jt.HEARTBEAT, PHONE, 0x7E7D).frame(),
                         h("7e 00 02 00 00 01 38 00 00 00 01 7d 02 7d 01 39 7e"))
        # Serial 0x44 makes the check code 3a ^ 44 = 7e; serial 0x47 makes it 7d.
        self.assertEqual(jt.Message(jt.HEARTBEAT, PHONE, 0x44).frame(),
                         h("7e 00 02 00 00 01 38 00 00 00 01 00 44 7d 02 7e"))
        self.assertEqual(jt.Message(jt.HEARTBEAT, PHONE, 0x47).frame(),
                         h("7e 00 02 00 00 01 38 00 00 00 01 00 47 7d 01 7e"))
        for serial in (0x7E7D, 0x44, 0x47):
            self.assertEqual(jt.decode_frame(jt.Message(jt.HEARTBEAT, PHONE, serial).frame())
                             .serial, serial)

    def test_location_report_by_hand(self):
        # alarm 0; status 3 (ACC on, positioned); lat 25.066878 = 01 7e 7d 7e;
        # lon 108.887677 = 06 7d 7e 7d; altitude 100 m = 00 64; 60.5 km/h = 605 = 02 5d;
        # heading 90 = 00 5a; 2026-12-06T23:59:59Z is 2026-12-07 07:59:59 at UTC+8.
        body = h("00 00 00 00  00 00 00 03  01 7e 7d 7e  06 7d 7e 7d  00 64  02 5d  00 5a"
                 "  26 12 07 07 59 59")
        p = jt.Position(ESCAPE_LAT, ESCAPE_LON, datetime(2026, 12, 6, 23, 59, 59, tzinfo=UTC),
                        altitude_m=100, speed_kmh=60.5, heading=90)
        self.assertEqual(p.encode(), body)
        # Header 02 00 | 00 1c | 01 38 00 00 00 01 | 00 05: XOR 23. Body XOR 52. Check 71.
        frame = h("7e 02 00 00 1c 01 38 00 00 00 01 00 05"
                  " 00 00 00 00 00 00 00 03 01 7d 02 7d 01 7d 02 06 7d 01 7d 02 7d 01"
                  " 00 64 02 5d 00 5a 26 12 07 07 59 59 71 7e")
        self.assertEqual(jt.Message(jt.LOCATION, PHONE, 5, body).frame(), frame)
        back = jt.Position.decode(jt.decode_frame(frame).body)
        self.assertEqual((back.lat, back.lon, back.altitude_m, back.speed_kmh, back.heading),
                         (ESCAPE_LAT, ESCAPE_LON, 100, 60.5, 90))
        self.assertEqual(back.time, p.time)

    def test_every_escape_at_once(self):
        # The serial, the body and the check code of one frame all hold 0x7e and 0x7d.
        base = jt.Position(ESCAPE_LAT, ESCAPE_LON, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
        for target in (0x7E, 0x7D):
            for version in jt.VERSIONS:
                with self.subTest(target=target, version=version):
                    p = jt.position_with_check_code(base, target, PHONE, 0x7E7D, version)
                    packet = jt.Message(jt.LOCATION, PHONE, 0x7E7D, p.encode(), version).packet()
                    self.assertEqual(jt.check_code(packet), target)
                    frame = jt.seal(packet)
                    self.assertNotIn(0x7E, frame[1:-1])
                    self.assertEqual(frame[-3:], bytes([0x7D, 0x02 if target == 0x7E else 0x01,
                                                        0x7E]))
                    m = jt.decode_frame(frame)
                    self.assertEqual(m.serial, 0x7E7D)
                    self.assertEqual(jt.Position.decode(m.body), dataclasses.replace(
                        p, status=p.status_word(), time=p.time.astimezone(jt.CHINA)))

    def test_find_check_code(self):
        candidate, packet = jt.find_check_code(
            0x7D, lambda s: jt.Message(jt.HEARTBEAT, PHONE, s).packet(), range(65536))
        self.assertEqual((candidate, jt.check_code(packet)), (0x47, 0x7D))
        with self.assertRaises(ValueError):
            jt.find_check_code(0x7E, lambda s: b"\x00", range(3))

    def test_bad_frames_refused(self):
        packet = jt.Message(jt.HEARTBEAT, PHONE, 1).packet()
        for name, frame in [
            ("check", jt.frame_with_bad_check(packet)),
            ("escape", jt.frame_with_bad_escape(packet)),
            ("length", jt.frame_with_wrong_length(jt.Message(jt.HEARTBEAT, PHONE, 1))),
            ("short header", jt.seal(h("00 02 00 00 01 38"))),
            ("2019 short header", jt.seal(h("00 02 40 00 01 00 00"))),
            ("not BCD", jt.seal(h("00 02 00 00 01 3a 00 00 00 01 00 01"))),
            ("one byte", h("7e 00 7e")),
        ]:
            with self.subTest(name), self.assertRaises(jt.FrameError):
                jt.decode_frame(frame)
        self.assertEqual(jt.frame_with_bad_check(packet), h("7e 00 02 00 00 01 38 00 00 00 01"
                                                            " 00 01 c4 7e"))
        self.assertNotIn(0x7E, jt.garbage(500, seed=1, flags=False))

    def test_body_too_long_for_one_packet(self):
        jt.Message(jt.LOCATION, PHONE, 1, bytes(1023)).frame()
        with self.assertRaises(ValueError):
            jt.Message(jt.LOCATION, PHONE, 1, bytes(1024)).frame()

    def test_phone_fits_its_bcd(self):
        with self.assertRaises(ValueError):
            jt.Message(jt.HEARTBEAT, "1234567890123", 1).frame()  # 13 digits in BCD[6]
        jt.Message(jt.HEARTBEAT, "12345678901234567890", 1, version=2019).frame()
        with self.assertRaises(ValueError):
            jt.Message(jt.HEARTBEAT, "1380000000x", 1).frame()


class SplitterTest(unittest.TestCase):
    def test_a_stream_fed_a_byte_at_a_time(self):
        frames = [jt.Message(jt.HEARTBEAT, PHONE, s).frame() for s in (1, 0x7E7D, 0x44)]
        stream = b"noise" + b"".join(frames)
        splitter = jt.FrameSplitter()
        found = []
        for i in range(len(stream)):
            found += splitter.feed(stream[i:i + 1])
        self.assertEqual([jt.decode_frame(c).serial for c in found], [1, 0x7E7D, 0x44])
        self.assertEqual(splitter.dropped, len(b"noise"))
        self.assertEqual(splitter.pending, 0)

    def test_a_shared_flag_and_a_runaway(self):
        a, b = (jt.Message(jt.HEARTBEAT, PHONE, s).frame() for s in (1, 2))
        self.assertEqual(len(jt.FrameSplitter().feed(a + b[1:])), 2)  # one flag between
        splitter = jt.FrameSplitter(limit=100)
        self.assertEqual(splitter.feed(b"\x7e" + bytes(101)), [])
        self.assertEqual(splitter.pending, 0)
        self.assertEqual([jt.decode_frame(c).serial for c in splitter.feed(a)], [1])


class BodyTest(unittest.TestCase):
    def test_bcd_time_is_beijing_time(self):
        # 2026-12-07 07:59:59 at UTC+8 is 2026-12-06T23:59:59Z.
        instant = datetime(2026, 12, 6, 23, 59, 59, tzinfo=UTC)
        self.assertEqual(jt.encode_bcd_time(instant), h("26 12 07 07 59 59"))
        self.assertEqual(jt.decode_bcd_time(h("26 12 07 07 59 59")), instant)
        self.assertEqual(jt.decode_bcd_time(h("26 12 07 07 59 59")).astimezone(UTC)
                         .isoformat(), "2026-12-06T23:59:59+00:00")
        with self.assertRaises(ValueError):
            jt.encode_bcd_time(datetime(2026, 12, 6, 23, 59, 59))  # naive
        with self.assertRaises(ValueError):
            jt.decode_bcd_time(h("26 12 07 07 59 5a"))

    def test_south_and_west(self):
        when = datetime(2026, 3, 1, tzinfo=UTC)
        rows = [  # lat, lon, status bits 2 (south) and 3 (west), lat and lon fields
            (38.041234, 114.514862, 0, "02 44 76 92", "06 d3 5b ae"),
            (-34.603722, -58.381592, 0b1100, "02 10 02 ca", "03 7a d5 18"),
            (-33.86882, 151.209296, 0b0100, "02 04 cc 14", "09 03 45 50"),
            (51.477928, -0.001545, 0b1000, "03 11 7d a8", "00 00 06 09"),
        ]
        for lat, lon, bits, lat_hex, lon_hex in rows:
            with self.subTest(lat=lat, lon=lon):
                body = jt.Position(lat, lon, when).encode()
                self.assertEqual(int.from_bytes(body[4:8], "big") & 0b1100, bits)
                self.assertEqual(body[8:12], h(lat_hex))
                self.assertEqual(body[12:16], h(lon_hex))
                back = jt.Position.decode(body)
                self.assertEqual((back.lat, back.lon), (lat, lon))
        with self.assertRaises(ValueError):
            jt.Position(91, 0, when).encode()
        with self.assertRaises(ValueError):
            jt.Position(0, 0, when, altitude_m=-1).encode()

    def test_additional_items(self):
        p = jt.Position(1.0, 2.0, datetime(2026, 3, 1, tzinfo=UTC), mileage_km=1234.5,
                        items=((0x30, b"\x11"),))
        body = p.encode()
        self.assertEqual(body[28:], h("01 04 00 00 30 39  30 01 11"))  # 12345 = 0x3039
        back = jt.Position.decode(body)
        self.assertEqual(back.mileage_km, 1234.5)
        self.assertEqual(back.items, ((0x01, h("00 00 30 39")), (0x30, b"\x11")))
        with self.assertRaises(jt.ProtocolError):
            jt.Position.decode(body + b"\x31\x05\x00")  # an item past the end

    def test_registration(self):
        r = jt.Registration(province=13, city=101, maker="PINGM", model="SIM-1",
                            terminal_id="T000001", plate_colour=2, plate="冀A12345")
        body = r.encode(2013)
        self.assertEqual(body, h("00 0d 00 65") + b"PINGM" + b"SIM-1" + bytes(15)
                         + b"T000001" + h("02 bc bd 41 31 32 33 34 35"))
        self.assertEqual(jt.Registration.decode(body, 2013), r)
        body = r.encode(2019)
        self.assertEqual(len(body), 4 + 11 + 30 + 30 + 1 + 8)
        self.assertEqual(body[4:15], b"PINGM" + bytes(6))
        self.assertEqual(jt.Registration.decode(body, 2019), r)
        with self.assertRaises(ValueError):
            jt.Registration(maker="TOOLONG").encode(2013)

    def test_authentication(self):
        self.assertEqual(jt.Authentication(b"A~}B").encode(2013), b"A~}B")
        body = jt.Authentication(b"A~}B", "860000000000001", "1.2").encode(2019)
        self.assertEqual(body, h("04") + b"A~}B" + b"860000000000001" + b"1.2" + bytes(17))
        back = jt.Authentication.decode(body, 2019)
        self.assertEqual((back.code, back.imei, back.software_version),
                         (b"A~}B", "860000000000001", "1.2"))

    def test_replies(self):
        self.assertEqual(jt.GeneralReply.decode(h("00 ee 02 00 00")),
                         jt.GeneralReply(0xEE, 0x0200, 0))
        reply = jt.RegistrationReply.decode(h("00 07 00") + b"code")
        self.assertEqual((reply.reply_serial, reply.result, reply.auth_code), (7, 0, b"code"))
        self.assertEqual(jt.RegistrationReply.decode(h("00 07 04")).result,
                         jt.REGISTER_NO_TERMINAL)
        with self.assertRaises(jt.ProtocolError):
            jt.GeneralReply.decode(h("00 ee 02 00"))
        self.assertEqual(jt.ResendRequest.decode(h("00 10 02 00 02 00 03")).indices, [2, 3])
        self.assertEqual(jt.ResendRequest.decode(h("00 10 00 02 00 02 00 03")),
                         jt.ResendRequest(0x10, [2, 3]))

    def test_batch(self):
        when = datetime(2026, 3, 1, tzinfo=UTC)
        ps = [jt.Position(1.0, 2.0, when), jt.Position(-1.0, -2.0, when, mileage_km=1.5)]
        body = jt.batch_body(ps, jt.BATCH_BLIND_AREA)
        self.assertEqual(body[:5], h("00 02 01 00 1c"))  # 2 items, 补报, first of 28 bytes
        self.assertEqual(body[33:35], h("00 22"))  # the second: 28 + 6 bytes
        kind, back = jt.decode_batch_body(body)
        self.assertEqual(kind, jt.BATCH_BLIND_AREA)
        self.assertEqual([(p.lat, p.lon, p.mileage_km) for p in back],
                         [(1.0, 2.0, None), (-1.0, -2.0, 1.5)])
        with self.assertRaises(jt.ProtocolError):
            jt.decode_batch_body(body + b"\x00")


class SubPackageTest(unittest.TestCase):
    def test_split_and_reassemble(self):
        body = bytes(range(256)) * 10  # 2560 bytes, 0x7d and 0x7e among them
        parts = jt.split_message(jt.LOCATION_BATCH, body, PHONE, 0xFFFE, 2013, 1023)
        self.assertEqual([(m.package, m.serial, len(m.body)) for m in parts],
                         [((3, 1), 0xFFFE, 1023), ((3, 2), 0xFFFF, 1023), ((3, 3), 0, 514)])
        # The header of the first: 07 04, properties 0x2000 | 1023 = 23 ff, phone,
        # serial ff fe, then total 00 03 and index 00 01.
        self.assertEqual(parts[0].header(),
                         h("07 04 23 ff 01 38 00 00 00 01 ff fe 00 03 00 01"))
        self.assertEqual(jt.Message(jt.LOCATION_BATCH, PHONE, 1, b"x", 2019, (2, 2)).header(),
                         h("07 04 60 01 01 00 00 00 00 01 38 00 00 00 01 00 01 00 02 00 02"))
        frames = [m.frame() for m in parts]
        random.Random(1).shuffle(frames)
        r = jt.Reassembler()
        results = [r.add(jt.decode_frame(f)) for f in frames]
        self.assertEqual(results[:2], [None, None])
        whole = results[2]
        self.assertEqual((whole.msg_id, whole.serial, whole.package, whole.body),
                         (jt.LOCATION_BATCH, 0xFFFE, None, body))
        self.assertEqual(r.missing(), {})

    def test_missing_and_bad_indices(self):
        parts = jt.split_message(jt.LOCATION_BATCH, bytes(30), PHONE, 7, 2019, 10)
        r = jt.Reassembler()
        r.add(parts[0])
        r.add(parts[2])
        self.assertEqual(list(r.missing().values()), [[2]])
        with self.assertRaises(jt.FrameError):
            r.add(dataclasses.replace(parts[0], package=(3, 4)))


# ---------------------------------------------------------------------------
# a fake platform, over real sockets


class FakePlatform:
    """A minimal JT/T 808 platform for this test. Answers 0x0100 with 0x8100 (result 4
    for a phone outside `phones` when given, else 0 and AUTH_CODE), 0x0102 with 0x8001
    (0 for the right code, else 1), and everything else with 0x8001: 1 before the
    connection has authenticated, 0 after (3 for ids it does not know). Sub-packages:
    `split_reply` "each" answers every packet, "first"/"last" one reply naming the first
    or last serial; `drop_index` drops that sub-package once and asks for it again with
    0x8003. `ignore` holds ids left unanswered; `misname` maps ids to the id their reply
    names instead; `close_on` is an id on which the connection is closed unanswered;
    `push` is a message id sent to the terminal right after its authentication. Bad
    frames are counted, not answered."""

    def __init__(self, phones=None, split_reply="each", drop_index=None, ignore=(),
                 push=None, close_on=None, misname=None):
        self.phones = phones
        self.split_reply = split_reply
        self.drop_index = drop_index
        self.ignore = set(ignore)
        self.push = push
        self.close_on = close_on
        self.misname = misname or {}
        self.messages = []  # (connection number, Message), whole messages
        self.positions = []
        self.bad_frames = []
        self.terminal_replies = []
        self.connections = 0
        self.cut_short = 0  # connections closed with half a frame pending
        self.resend_requests = 0
        self.server = None

    async def start(self):
        # A backlog for the swarm's 1,000 connections at once.
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=4096)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self):
        self.server.close()
        await self.server.wait_closed()

    def ids(self):
        return [m.msg_id for _, m in self.messages]

    async def _serve(self, reader, writer):
        self.connections += 1
        conn = self.connections
        splitter, reassembler = jt.FrameSplitter(), jt.Reassembler()
        state = {"authenticated": False, "serial": 0, "dropped": False}

        def send(m, msg_id, body):
            out = jt.Message(msg_id, m.phone, state["serial"], body, m.version)
            state["serial"] = (state["serial"] + 1) & 0xFFFF
            writer.write(out.frame())

        def reply(m, serial, result):
            named = self.misname.get(m.msg_id, m.msg_id)
            send(m, jt.PLATFORM_REPLY, jt.GeneralReply(serial, named, result).encode())

        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for content in splitter.feed(data):
                    try:
                        m = jt.decode_frame(content)
                    except jt.FrameError as e:
                        self.bad_frames.append(str(e))
                        continue
                    if m.package is not None:
                        total, index = m.package
                        if index == self.drop_index and not state["dropped"]:
                            state["dropped"] = True
                            continue
                        whole = reassembler.add(m)
                        if self.split_reply == "each":
                            reply(m, m.serial, 0)
                        missing = next(iter(reassembler.missing().values()), None)
                        if whole is None:
                            if index == total and missing:
                                first = (m.serial - (index - 1)) & 0xFFFF
                                send(m, jt.RESEND_REQUEST, jt.ResendRequest(first, missing)
                                     .encode())
                                self.resend_requests += 1
                            continue
                        self._handle(conn, whole, state)
                        if self.split_reply != "each":
                            serial = whole.serial if self.split_reply == "first" else (
                                whole.serial + total - 1) & 0xFFFF
                            reply(whole, serial, 0)
                        continue
                    result = self._handle(conn, m, state)
                    if m.msg_id == self.close_on:
                        writer.close()
                        return
                    if m.msg_id == jt.REGISTER:
                        code = AUTH_CODE if result == 0 else b""
                        send(m, jt.REGISTER_REPLY,
                             jt.RegistrationReply(m.serial, result, code).encode())
                    elif result is not None and m.msg_id not in self.ignore:
                        reply(m, m.serial, result)
                        if m.msg_id == jt.AUTHENTICATE and result == 0 and self.push:
                            send(m, self.push, b"")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            if splitter.pending:
                self.cut_short += 1
            writer.close()

    def _handle(self, conn, m, state):
        """The result for a whole message (None: no answer)."""
        self.messages.append((conn, m))
        if m.msg_id == jt.REGISTER:
            jt.Registration.decode(m.body, m.version)
            if self.phones is not None and jt.normalize_phone(m.phone) not in self.phones:
                return jt.REGISTER_NO_TERMINAL
            return jt.REGISTER_OK
        if m.msg_id == jt.AUTHENTICATE:
            state["authenticated"] = jt.Authentication.decode(m.body, m.version).code == AUTH_CODE
            return jt.RESULT_OK if state["authenticated"] else jt.RESULT_FAILED
        if m.msg_id == jt.TERMINAL_REPLY:
            self.terminal_replies.append(jt.GeneralReply.decode(m.body))
            return None
        if not state["authenticated"]:
            return jt.RESULT_FAILED
        if m.msg_id == jt.LOCATION:
            self.positions.append(jt.Position.decode(m.body))
        elif m.msg_id == jt.LOCATION_BATCH:
            self.positions += jt.decode_batch_body(m.body)[1]
        elif m.msg_id not in (jt.HEARTBEAT, jt.LOGOUT):
            return jt.RESULT_UNSUPPORTED
        return jt.RESULT_OK


def track(n, start=None, lat=38.04, lon=114.51):
    start = start or datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    return [jt.Position(lat + i * 1e-4, lon - i * 1e-4, start + timedelta(seconds=i),
                        speed_kmh=30.5, heading=i % 360, mileage_km=100 + i / 10)
            for i in range(n)]


def same_places(test, got, sent):
    """The positions a platform got are those sent, to the wire's resolution (1e-6
    degree, 0.1 km/h, 0.1 km, 1 s; times compared as instants)."""
    def fields(p):
        return (p.lat_e6, p.lon_e6, p.lat < 0, p.lon < 0, p.time, round(p.speed_kmh * 10),
                p.heading, p.mileage_km and round(p.mileage_km * 10))

    test.assertEqual([fields(p) for p in got], [fields(p) for p in sent])


class TerminalTest(unittest.IsolatedAsyncioTestCase):
    async def platform(self, **kwargs):
        platform = await FakePlatform(**kwargs).start()
        self.addAsyncCleanup(platform.stop)
        return platform

    async def terminal(self, platform, version=2013, **kwargs):
        term = jt.Terminal("127.0.0.1", platform.port, PHONE, version=version, **kwargs)
        self.addAsyncCleanup(term.close)
        await term.connect()
        return term

    async def test_the_whole_flow_in_both_editions(self):
        for version in jt.VERSIONS:
            with self.subTest(version=version):
                platform = await self.platform()
                term = await self.terminal(platform, version)
                reply = await term.register()
                self.assertIsInstance(reply, jt.RegistrationReply)
                self.assertTrue(reply.ok)
                self.assertEqual(term.auth_code, AUTH_CODE)  # 0x7e and 0x7d unescaped
                self.assertTrue((await term.authenticate()).ok)
                self.assertTrue(term.authenticated)
                self.assertTrue((await term.heartbeat()).ok)
                sent = track(12)
                self.assertEqual(await term.report(sent[0]),
                                 jt.GeneralReply(term.serial - 1, jt.LOCATION, 0))
                self.assertTrue((await term.report_batch(sent[1:])).ok)
                same_places(self, platform.positions, sent)
                self.assertTrue((await term.reconnect()).ok)
                self.assertTrue((await term.report(sent[0])).ok)
                self.assertTrue((await term.logout()).ok)
                self.assertEqual(platform.ids(), [
                    jt.REGISTER, jt.AUTHENTICATE, jt.HEARTBEAT, jt.LOCATION,
                    jt.LOCATION_BATCH, jt.AUTHENTICATE, jt.LOCATION, jt.LOGOUT])
                self.assertEqual([c for c, _ in platform.messages], [1] * 5 + [2] * 3)
                self.assertEqual({m.version for _, m in platform.messages}, {version})
                registration = jt.Registration.decode(platform.messages[0][1].body, version)
                self.assertEqual(registration, term.registration)
                self.assertEqual(term.bad_frames, [])

    async def test_escapes_in_serial_body_and_check_code(self):
        platform = await self.platform()
        term = await self.terminal(platform)
        await term.register()
        await term.authenticate()
        base = jt.Position(ESCAPE_LAT, ESCAPE_LON, datetime(2026, 5, 1, tzinfo=UTC))
        for target in (0x7E, 0x7D):
            term.serial = 0x7E7D
            p = jt.position_with_check_code(base, target, PHONE, term.serial)
            reply = await term.report(p)
            self.assertEqual((reply.reply_serial, reply.result), (0x7E7D, 0))
        self.assertEqual([(p.lat, p.lon) for p in platform.positions],
                         [(ESCAPE_LAT, ESCAPE_LON)] * 2)
        # Serials wrap from 0xffff to 0 (§4.4.3).
        term.serial = 0xFFFF
        self.assertTrue((await term.heartbeat()).ok)
        self.assertEqual(term.serial, 0)
        self.assertTrue((await term.heartbeat()).ok)

    async def test_sub_packages_each_platform_policy(self):
        sent = track(100)  # 100 items of 2 + 34 bytes: a body of 3603 bytes, 4 packets
        for policy in ("each", "first", "last"):
            for version in jt.VERSIONS:
                with self.subTest(policy=policy, version=version):
                    platform = await self.platform(split_reply=policy)
                    term = await self.terminal(platform, version, split_reply=policy,
                                               auth_code=AUTH_CODE)
                    await term.authenticate()
                    term.serial = 0xFFFE  # the packets' serials wrap
                    reply = await term.report_batch(sent)
                    self.assertTrue(reply.ok)
                    self.assertEqual(term.serial, 2)
                    same_places(self, platform.positions, sent)
        # Smaller packets, by choice.
        platform = await self.platform()
        term = await self.terminal(platform, auth_code=AUTH_CODE, max_body=100)
        await term.authenticate()
        self.assertTrue((await term.report_batch(sent[:10])).ok)  # 363 bytes: 4 packets
        self.assertEqual(term.serial, 5)
        same_places(self, platform.positions, sent[:10])

    async def test_a_lost_sub_package_is_sent_again(self):
        # The platform answers each packet it gets, so the message is answered when
        # every packet is, the one sent again included.
        platform = await self.platform(drop_index=2)
        term = await self.terminal(platform, auth_code=AUTH_CODE, split_reply="each")
        await term.authenticate()
        sent = track(60)
        self.assertTrue((await term.report_batch(sent)).ok)
        same_places(self, platform.positions, sent)
        self.assertEqual(platform.resend_requests, 1)

    async def test_refusals_are_replies(self):
        platform = await self.platform(phones={"13800000009"})
        term = await self.terminal(platform)
        reply = await term.register()
        self.assertEqual((reply.result, reply.ok), (jt.REGISTER_NO_TERMINAL, False))
        self.assertIsNone(term.auth_code)
        with self.assertRaises(ValueError):
            await term.authenticate()
        self.assertEqual((await term.authenticate(b"wrong")).result, jt.RESULT_FAILED)
        self.assertFalse(term.authenticated)
        self.assertEqual((await term.report(track(1)[0])).result, jt.RESULT_FAILED)
        self.assertEqual(platform.positions, [])

    async def test_platform_commands_are_answered_unsupported(self):
        platform = await self.platform(push=0x8104)  # 查询终端参数
        term = await self.terminal(platform, auth_code=AUTH_CODE)
        await term.authenticate()
        pushed = await asyncio.wait_for(term.inbox.get(), 10)
        self.assertEqual(pushed.msg_id, 0x8104)
        await term.heartbeat()  # the 0x0001 went before it
        self.assertEqual(platform.terminal_replies,
                         [jt.GeneralReply(pushed.serial, 0x8104, jt.RESULT_UNSUPPORTED)])

    async def test_bad_frames_then_a_good_one(self):
        platform = await self.platform()
        term = await self.terminal(platform, auth_code=AUTH_CODE)
        await term.authenticate()
        kinds = ("check", "escape", "length")
        serials = []
        for kind in kinds:
            serial, data = term.bad_frame(kind)
            serials.append(serial)
            await term.send_raw(data)
        await term.send_raw(jt.garbage(64, seed=3, flags=False))
        await term.send_raw(b"\x7e" + jt.garbage(64, seed=4, flags=False) + b"\x7e")
        self.assertTrue((await term.heartbeat()).ok)
        self.assertEqual(len(platform.bad_frames), 5)
        for serial in serials:  # bad frames are not answered
            with self.assertRaises(jt.ReplyTimeout):
                await term.wait_reply(serial, timeout=0.2)

    async def test_half_a_frame_then_disconnect(self):
        platform = await self.platform()
        term = await self.terminal(platform, auth_code=AUTH_CODE)
        await term.authenticate()
        await term.send_half_frame_and_close()
        self.assertFalse(term.connected)
        for _ in range(200):
            if platform.cut_short:
                break
            await asyncio.sleep(0.05)
        self.assertEqual(platform.cut_short, 1)
        with self.assertRaises(jt.ConnectionClosed):
            await term.heartbeat()
        self.assertTrue((await term.reconnect()).ok)

    async def test_no_reply_and_a_closed_connection(self):
        platform = await self.platform(ignore={jt.HEARTBEAT}, close_on=jt.LOGOUT)
        term = await self.terminal(platform, auth_code=AUTH_CODE, reply_timeout=0.3)
        await term.authenticate()
        with self.assertRaises(jt.ReplyTimeout):
            await term.heartbeat()
        with self.assertRaises(jt.ConnectionClosed):
            await term.logout()
        self.assertFalse(term.connected)

    async def test_a_reply_naming_another_message_is_a_protocol_error(self):
        platform = await self.platform(misname={jt.HEARTBEAT: jt.LOCATION})
        term = await self.terminal(platform, auth_code=AUTH_CODE)
        await term.authenticate()
        with self.assertRaises(jt.ProtocolError):
            await term.heartbeat()
        serials = await term.send(jt.HEARTBEAT)  # send and wait_reply do not check
        self.assertEqual((await term.wait_reply(serials[0])).reply_id, jt.LOCATION)


# ---------------------------------------------------------------------------
# the command line, as a program


class PlatformThread:
    """A FakePlatform on its own event loop in a thread, for the programs."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        self.loop = asyncio.new_event_loop()
        self.platform = self.loop.run_until_complete(FakePlatform(**self.kwargs).start())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.platform.stop())
        self.loop.close()

    def __enter__(self):
        self.thread.start()
        self.ready.wait(30)
        return self.platform

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


def program(*args, timeout=300):
    r = subprocess.run([sys.executable, "-B", PROGRAM, *args], capture_output=True,
                       text=True, timeout=timeout)
    return r.returncode, [json.loads(line) for line in r.stdout.splitlines() if line], r.stderr


class CommandLineTest(unittest.TestCase):
    def test_help_on_every_command(self):
        for command in ([], ["run"], ["swarm"], ["decode"]):
            with self.subTest(command=command):
                r = subprocess.run([sys.executable, "-B", PROGRAM, *command, "--help"],
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("usage:", r.stdout)

    def test_run_along_a_track(self):
        with PlatformThread() as platform:
            status, lines, err = program(
                "run", "--port", str(platform.port), "--phone", PHONE, "--version", "2019",
                "--track", "38.04,114.51; -34.603722,-58.381592;38.05,114.52",
                "--interval", "0", "--logout")
            self.assertEqual(status, 0, err)
            self.assertEqual([l["event"] for l in lines],
                             ["register", "authenticate", "location", "location", "location",
                              "logout"])
            self.assertTrue(all(l["ok"] for l in lines))
            self.assertEqual(lines[0]["auth_code"], AUTH_CODE.decode())
            self.assertEqual([(p.lat, p.lon) for p in platform.positions],
                             [(38.04, 114.51), (-34.603722, -58.381592), (38.05, 114.52)])

    def test_run_from_a_positions_file_in_batches(self):
        with tempfile.TemporaryDirectory() as tmp, PlatformThread() as platform:
            path = os.path.join(tmp, "positions")
            with open(path, "w") as f:
                f.write("# a track\n38.04,114.51\n")
                f.write('{"lat": 38.05, "lon": 114.52, "speed_kmh": 42.5, "heading": 90,'
                        ' "time": "2026-05-01T08:00:00Z", "mileage_km": 12.3}\n')
                f.write("38.06,114.53\n")
            status, lines, err = program("run", "--port", str(platform.port), "--phone", PHONE,
                                         "--positions", path, "--batch", "2", "--interval", "0",
                                         "--auth-code", AUTH_CODE.decode())
            self.assertEqual(status, 0, err)
            self.assertEqual([l["event"] for l in lines],
                             ["authenticate", "location_batch", "location_batch"])
            p = platform.positions[1]
            self.assertEqual((p.speed_kmh, p.heading, p.mileage_km, p.time),
                             (42.5, 90, 12.3, datetime(2026, 5, 1, 8, tzinfo=UTC)))

    def test_run_refused(self):
        with PlatformThread(phones=set()) as platform:
            status, lines, _ = program("run", "--port", str(platform.port), "--phone", PHONE,
                                       "--track", "1,2")
            self.assertEqual(status, 1)
            self.assertEqual(lines, [{"event": "register", "ok": False, "result": 4,
                                      "reply_id": "0x0100", "reply_serial": 0,
                                      "latency_ms": lines[0]["latency_ms"]}])

    def test_a_swarm_of_1000(self):
        with tempfile.TemporaryDirectory() as tmp, PlatformThread() as platform:
            codes = os.path.join(tmp, "codes.json")
            status, lines, err = program(
                "swarm", "--port", str(platform.port), "--terminals", "1000", "--reports", "2",
                "--phone-prefix", "1390000", "--save-auth-codes", codes, "--timeout", "120")
            self.assertEqual(status, 0, err)
            (s,) = lines
            self.assertEqual((s["connected"], s["registered"], s["authenticated"],
                              s["connected_at_end"], s["reports_sent"], s["replies_ok"],
                              s["replies_failed"], s["timeouts"], s["errors"]),
                             (1000, 1000, 1000, 1000, 2000, 2000, 0, 0, {}))
            for key in ("elapsed_s", "reports_per_s", "latency_p50_ms", "latency_p99_ms"):
                self.assertIsInstance(s[key], (int, float), key)
            phones = {jt.normalize_phone(m.phone) for _, m in platform.messages}
            self.assertEqual(phones, {"1390000%04d" % i for i in range(1, 1001)})
            with open(codes) as f:
                self.assertEqual(len(json.load(f)), 1000)
            # Again with the saved codes (no registration), 2019, in 0x0704 batches of 3,
            # from two worker processes.
            before = len(platform.messages)
            status, lines, err = program(
                "swarm", "--port", str(platform.port), "--terminals", "50", "--reports", "7",
                "--batch", "3", "--version", "2019", "--auth-codes", codes, "--processes", "2")
            self.assertEqual(status, 0, err)
            (s,) = lines
            self.assertEqual((s["processes"], s["registered"], s["authenticated"],
                              s["messages_sent"], s["reports_sent"], s["reports_ok"]),
                             (2, 0, 50, 150, 350, 350))
            phones = {jt.normalize_phone(m.phone) for _, m in platform.messages[before:]}
            self.assertEqual(phones, {"1390000%04d" % i for i in range(1, 51)})
            ids = [m.msg_id for _, m in platform.messages[before:]]
            self.assertEqual(ids.count(jt.REGISTER), 0)
            self.assertEqual(ids.count(jt.LOCATION_BATCH), 150)

    def test_swarm_counts_failures(self):
        with PlatformThread(ignore={jt.LOCATION}) as platform:
            status, lines, _ = program("swarm", "--port", str(platform.port), "--terminals",
                                       "3", "--reports", "2", "--timeout", "0.2")
            self.assertEqual(status, 1)
            self.assertEqual((lines[0]["timeouts"], lines[0]["replies_ok"]), (6, 0))

    def test_decode(self):
        status, lines, _ = program("decode", "7e000200000138000000010001 3b7e",
                                   "000200000138000000010001 3c")
        self.assertEqual(status, 1)
        self.assertEqual((lines[0]["name"], lines[0]["phone"], lines[0]["serial"]),
                         ("heartbeat", "013800000001", 1))
        self.assertIn("check code", lines[1]["error"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
