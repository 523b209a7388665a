"""Process-level tests of pingma-scale-sim (API.md "Station agent", pingma-fill-v1).

Run: /usr/bin/python3 scale_sim_test.py /path/to/pingma-scale-sim [unittest args]
(Debian's pymodbus loads only in /usr/bin/python3.)

The simulator is read and written by Modbus masters this project did not write:
mbpoll and pymodbus 3.0, over TCP on port 0 and over RTU on a socat pseudo-terminal
pair. The control port is driven with plain sockets. No test asserts a time: waits
poll for a state, with generous deadlines only so that nothing hangs.
"""

import json
import math
import os
import queue
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from pymodbus.client import ModbusSerialClient, ModbusTcpClient

SIM = None  # set in __main__
DEADLINE = 30  # seconds to wait for any state; no test asserts a time
FLOW = "5"  # kg/s: fills of ~15 kg in about 3 s

STABLE, VALVE_OPEN, FILL_DONE, FAULT, PRESENT, OVERLOAD = (1 << i for i in range(6))
ILLEGAL_FUNCTION, ILLEGAL_DATA_ADDRESS, ILLEGAL_DATA_VALUE = 1, 2, 3


def float_regs(value):
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [hi, lo]


def regs_float(hi, lo):
    return struct.unpack(">f", struct.pack(">HH", hi, lo))[0]


def wait_for(predicate, what):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def mbpoll(*args):
    """mbpoll's exit status, stdout and stderr."""
    r = subprocess.run(["mbpoll", *args], capture_output=True, timeout=DEADLINE)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def mbpoll_values(stdout):
    """{reference: text} from mbpoll's "[n]: value" lines."""
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\[(\d+)\]:\s+(\S+)", stdout, re.M)}


class Sim:
    """One pingma-scale-sim process; its stderr lines are kept."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([SIM, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.err_lines = []
        self.err_thread = threading.Thread(target=self._pump_err, daemon=True)
        self.err_thread.start()
        out = queue.Queue()
        threading.Thread(target=self._pump_out, args=(out,), daemon=True).start()
        first, second = out.get(timeout=DEADLINE), out.get(timeout=DEADLINE)
        if first is None or second is None:
            raise AssertionError("pingma-scale-sim ended: " + "\n".join(self.err_lines))
        assert first.startswith("modbus on "), first
        assert second.startswith("control on "), second
        self.modbus = first[len("modbus on "):]
        self.control_port = int(second.rsplit(":", 1)[1])
        self.modbus_port = int(self.modbus.rsplit(":", 1)[1]) if "rtu" not in first else None
        self.control_sock = socket.create_connection(("127.0.0.1", self.control_port),
                                                     timeout=DEADLINE)
        self.control_file = self.control_sock.makefile("rwb")

    def _pump_err(self):
        for raw in self.proc.stderr:
            self.err_lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def _pump_out(self, q):
        for raw in self.proc.stdout:
            q.put(raw.decode().rstrip("\n"))
        q.put(None)

    def control(self, line):
        self.control_file.write(line.encode() + b"\n")
        self.control_file.flush()
        return self.control_file.readline().decode().rstrip("\n")

    def ok(self, line):
        answer = self.control(line)
        assert answer == "ok", f"{line!r} -> {answer!r}"

    def status(self):
        return json.loads(self.control("status"))

    def stop(self):
        self.control_file.close()
        self.control_sock.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=DEADLINE)
        self.err_thread.join(timeout=DEADLINE)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code

    def logged(self, needle):
        """Waits for a stderr line holding `needle`."""
        return wait_for(lambda: any(needle in line for line in self.err_lines),
                        f"'{needle}' on stderr")


class Usage(unittest.TestCase):
    def run_sim(self, *args):
        r = subprocess.run([SIM, *args], capture_output=True, timeout=DEADLINE)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def test_help(self):
        code, out, _ = self.run_sim("--help")
        self.assertEqual(code, 0)
        for option in ("--listen", "--rtu", "--baud", "--parity", "--control", "--flow-kg-s"):
            self.assertIn(option, out)

    def test_bad_usage_is_exit_2_with_one_line(self):
        for args in ([], ["--listen", "127.0.0.1:0"], ["--control", "127.0.0.1:0"],
                     ["--listen", "127.0.0.1:0", "--rtu", "/dev/null", "--control", "127.0.0.1:0"],
                     ["--listen", "no-port", "--control", "127.0.0.1:0"],
                     ["--listen", "127.0.0.1:70000", "--control", "127.0.0.1:0"],
                     ["--listen", "127.0.0.1:0", "--control", "127.0.0.1:x"],
                     ["--rtu", "/dev/null", "--parity", "X", "--control", "127.0.0.1:0"],
                     ["--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--flow-kg-s", "-1"],
                     ["--bogus"]):
            with self.subTest(args=args):
                code, out, err = self.run_sim(*args)
                self.assertEqual(code, 2, err)
                self.assertEqual(out, "")
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertTrue(err.startswith("pingma-scale-sim: "), err)

    def test_port_in_use_is_exit_1_with_one_line(self):
        taken = socket.create_server(("127.0.0.1", 0))
        try:
            port = taken.getsockname()[1]
            for args in (["--listen", f"127.0.0.1:{port}", "--control", "127.0.0.1:0"],
                         ["--listen", "127.0.0.1:0", "--control", f"127.0.0.1:{port}"],
                         ["--rtu", "/nonexistent/tty", "--control", "127.0.0.1:0"]):
                with self.subTest(args=args):
                    code, out, err = self.run_sim(*args)
                    self.assertEqual(code, 1, err)
                    self.assertEqual(out, "")
                    self.assertEqual(len(err.strip().splitlines()), 1, err)
                    self.assertTrue(err.startswith("pingma-scale-sim: "), err)
        finally:
            taken.close()


class Tcp(unittest.TestCase):
    def setUp(self):
        self.sim = Sim("--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--flow-kg-s", FLOW)
        self.port = self.sim.modbus_port
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        self.assertEqual(self.sim.stop(), 0, "\n".join(self.sim.err_lines))

    def client(self):
        c = ModbusTcpClient("127.0.0.1", port=self.port, timeout=5)
        self.assertTrue(c.connect())
        self.clients.append(c)
        return c

    def read(self, c):
        r = c.read_holding_registers(0, 9, slave=1)
        self.assertFalse(r.isError(), r)
        return r.registers

    def place_and_settle(self, tare="15.6", content="0.4"):
        self.sim.ok(f"place {tare} {content}")
        wait_for(lambda: self.sim.status()["bits"]["stable"], "a stable reading")

    def test_mbpoll_reads_and_writes_the_map(self):
        self.place_and_settle()
        code, out, err = mbpoll("-m", "tcp", "-a", "1", "-r", "1", "-c", "9", "-t", "4", "-1",
                                "-p", str(self.port), "127.0.0.1")
        self.assertEqual(code, 0, err)
        regs = {k: int(v) for k, v in mbpoll_values(out).items()}
        self.assertEqual(sorted(regs), list(range(1, 10)))
        self.assertAlmostEqual(regs_float(regs[1], regs[2]), 16.0, places=4)
        self.assertEqual(regs[5], STABLE | PRESENT)
        self.assertEqual(regs[6], 0)  # command
        self.assertEqual(regs[7], 0)  # interlock: locked
        self.assertEqual(regs[9], 0)  # fault_code
        # Float view, big-endian word order (-B): gross, then cutoff.
        code, out, err = mbpoll("-m", "tcp", "-a", "1", "-r", "1", "-c", "2", "-t", "4:float",
                                "-B", "-1", "-p", str(self.port), "127.0.0.1")
        self.assertEqual(code, 0, err)
        values = mbpoll_values(out)
        self.assertAlmostEqual(float(values[1]), 16.0, places=3)
        self.assertEqual(float(values[3]), 0.0)
        code, _, err = mbpoll("-m", "tcp", "-a", "1", "-r", "3", "-t", "4:float", "-B", "-1",
                              "-p", str(self.port), "127.0.0.1", "30.5")
        self.assertEqual(code, 0, err)
        self.assertEqual(self.sim.status()["registers"]["cutoff_gross_kg"], 30.5)
        # The heartbeat moves on.
        first = self.sim.status()["registers"]["heartbeat"]
        wait_for(lambda: self.sim.status()["registers"]["heartbeat"] > first, "a heartbeat")
        # Writing a read-only register: mbpoll reports the exception.
        code, _, err = mbpoll("-m", "tcp", "-a", "1", "-r", "8", "-t", "4", "-1", "-p",
                              str(self.port), "127.0.0.1", "5")
        self.assertNotEqual(code, 0)
        self.assertIn("Illegal data address", err)

    def full_fill(self, overshoot):
        c = self.client()
        self.place_and_settle()
        local = "127.0.0.1:%d" % c.socket.getsockname()[1]
        self.assertFalse(c.write_register(6, 0, slave=1).isError())  # the driver locks first
        self.assertFalse(c.write_registers(2, float_regs(30.5), slave=1).isError())
        self.assertFalse(c.write_register(6, 1, slave=1).isError())
        self.assertEqual(self.read(c)[6], 1)
        self.assertFalse(c.write_register(5, 1, slave=1).isError())
        saw_open = wait_for(lambda: self.read(c)[4] & VALVE_OPEN, "the valve to open")
        self.assertTrue(saw_open)
        regs = wait_for(lambda: (lambda r: r if r[4] & FILL_DONE else None)(self.read(c)),
                        "the fill to be done")
        self.assertAlmostEqual(regs_float(regs[0], regs[1]), 30.5 + overshoot, places=3)
        self.assertEqual(regs[4] & (STABLE | VALVE_OPEN | PRESENT), STABLE | PRESENT)
        self.assertEqual(regs[5], 0)  # the command cleared
        self.assertEqual(regs[6], 0)  # relocked after the fill
        status = self.sim.status()
        self.assertEqual(status["fills"], 1)
        self.assertEqual(status["refused_starts"], 0)
        self.assertEqual([(w["value"], w["client"], w["accepted"])
                          for w in status["interlock_writes"]],
                         [(0, local, True), (1, local, True)])
        self.assertEqual(status["interlock_writes_total"], 2)
        for w in status["interlock_writes"]:
            self.assertRegex(w["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.sim.logged("fill done")

    def test_full_fill_with_pymodbus(self):
        self.full_fill(0.02)

    def test_full_fill_with_a_large_overshoot(self):
        self.sim.ok("fault overshoot 0.35")
        self.full_fill(0.35)

    def test_start_without_interlock_never_opens_the_valve(self):
        c = self.client()
        self.place_and_settle()
        self.assertFalse(c.write_register(6, 0, slave=1).isError())
        self.assertFalse(c.write_registers(2, float_regs(30.5), slave=1).isError())
        self.assertFalse(c.write_register(5, 1, slave=1).isError())  # no exception: refused
        status = wait_for(lambda: (lambda s: s if s["refused_starts"] == 1 else None)(
            self.sim.status()), "the refusal")
        self.assertIn("interlock is locked", status["last_refusal"])
        # Well past the valve's latency and the settling time: still shut, still 16 kg.
        time.sleep(1.0)
        regs = self.read(c)
        self.assertEqual(regs[4] & VALVE_OPEN, 0)
        self.assertEqual(regs[4] & FILL_DONE, 0)
        self.assertEqual(regs[5], 0)
        self.assertAlmostEqual(regs_float(regs[0], regs[1]), 16.0, places=3)
        status = self.sim.status()
        self.assertEqual(status["valve"], "idle")
        self.assertEqual(status["cylinder"]["content_kg"], 0.4)
        self.assertEqual((status["fills"], status["aborted_fills"]), (0, 0))
        self.assertEqual(status["refused_starts"], 1)
        self.assertNotIn(1, [w["value"] for w in status["interlock_writes"]])
        self.sim.logged("start refused: the interlock is locked")

    def test_stop_shuts_the_valve_and_relocks(self):
        c = self.client()
        self.place_and_settle()
        c.write_registers(2, float_regs(100.0), slave=1)
        c.write_register(6, 1, slave=1)
        c.write_register(5, 1, slave=1)
        wait_for(lambda: self.sim.status()["cylinder"]["content_kg"] > 1.0, "gas flowing")
        self.assertFalse(c.write_register(5, 2, slave=1).isError())
        regs = self.read(c)
        self.assertEqual(regs[4] & VALVE_OPEN, 0)
        self.assertEqual(regs[6], 0)
        status = self.sim.status()
        self.assertEqual((status["fills"], status["aborted_fills"]), (0, 1))

    def test_illegal_writes_are_exceptions_and_change_nothing(self):
        c = self.client()
        self.place_and_settle()
        self.assertFalse(c.write_registers(2, float_regs(30.0), slave=1).isError())
        before = self.read(c)
        rows = [
            ("gross", lambda: c.write_register(0, 1, slave=1), ILLEGAL_DATA_ADDRESS),
            ("gross low word", lambda: c.write_register(1, 1, slave=1), ILLEGAL_DATA_ADDRESS),
            ("status", lambda: c.write_register(4, 1, slave=1), ILLEGAL_DATA_ADDRESS),
            ("heartbeat", lambda: c.write_register(7, 1, slave=1), ILLEGAL_DATA_ADDRESS),
            ("fault_code", lambda: c.write_register(8, 1, slave=1), ILLEGAL_DATA_ADDRESS),
            ("beyond 9", lambda: c.write_register(10, 1, slave=1), ILLEGAL_DATA_ADDRESS),
            ("fault_code and message", lambda: c.write_registers(8, [0, 1], slave=1),
             ILLEGAL_DATA_ADDRESS),
            ("far beyond", lambda: c.write_registers(1000, [1, 2], slave=1),
             ILLEGAL_DATA_ADDRESS),
            ("half a float", lambda: c.write_register(2, 0x4200, slave=1), ILLEGAL_DATA_ADDRESS),
            ("block over status", lambda: c.write_registers(3, [0, 0, 1, 1], slave=1),
             ILLEGAL_DATA_ADDRESS),
            ("command 7", lambda: c.write_register(5, 7, slave=1), ILLEGAL_DATA_VALUE),
            ("interlock 5", lambda: c.write_register(6, 5, slave=1), ILLEGAL_DATA_VALUE),
            ("message 6", lambda: c.write_register(9, 6, slave=1), ILLEGAL_DATA_VALUE),
            ("coil beyond 3", lambda: c.write_coil(4, True, slave=1), ILLEGAL_DATA_ADDRESS),
            ("coils past 3", lambda: c.write_coils(2, [True, True, True], slave=1),
             ILLEGAL_DATA_ADDRESS),
            ("read coils beyond 3", lambda: c.read_coils(0, 5, slave=1), ILLEGAL_DATA_ADDRESS),
            ("cutoff NaN", lambda: c.write_registers(2, [0x7FC0, 0], slave=1),
             ILLEGAL_DATA_VALUE),
            ("cutoff negative", lambda: c.write_registers(2, float_regs(-1.0), slave=1),
             ILLEGAL_DATA_VALUE),
            ("cutoff over capacity", lambda: c.write_registers(2, float_regs(151.0), slave=1),
             ILLEGAL_DATA_VALUE),
            ("mask write", lambda: c.mask_write_register(6, 0xFFFF, 1, slave=1),
             ILLEGAL_FUNCTION),
            ("read beyond 9", lambda: c.read_holding_registers(5, 6, slave=1),
             ILLEGAL_DATA_ADDRESS),
        ]
        for name, call, code in rows:
            with self.subTest(name):
                r = call()
                self.assertTrue(r.isError(), r)
                self.assertEqual(r.exception_code, code)
        after = self.read(c)
        self.assertEqual([after[i] for i in (2, 3, 5, 6)], [before[i] for i in (2, 3, 5, 6)])
        status = self.sim.status()
        # Refused interlock writes are in the log too, marked so.
        self.assertEqual([(w["value"], w["accepted"]) for w in status["interlock_writes"]],
                         [(1, False), (5, False)])
        # So are refused signal writes; a coil that is no signal is not logged.
        self.assertEqual(status["registers"]["message_code"], 0)
        self.assertEqual(set(status["coils"].values()), {False})
        self.assertEqual([(w["which"], w["value"], w["accepted"]) for w in status["signals"]],
                         [("message_code", 1, False), ("message_code", 6, False),
                          ("lamp_red", 1, False), ("buzzer", 1, False)])

    def test_signals_written_by_pymodbus_and_mbpoll(self):
        c = self.client()
        local = "127.0.0.1:%d" % c.socket.getsockname()[1]
        self.assertFalse(c.write_coil(0, True, slave=1).isError())                  # function 05
        self.assertFalse(c.write_coils(1, [False, True, True], slave=1).isError())  # function 15
        self.assertFalse(c.write_register(9, 5, slave=1).isError())
        r = c.read_coils(0, 4, slave=1)
        self.assertFalse(r.isError(), r)
        self.assertEqual(r.bits[:4], [True, False, True, True])
        self.assertEqual(c.read_holding_registers(9, 1, slave=1).registers, [5])

        # mbpoll counts from 1: coil reference 2 is coil 1 (amber), register 10 is 9.
        code, _, err = mbpoll("-m", "tcp", "-a", "1", "-r", "2", "-t", "0", "-1", "-p",
                              str(self.port), "127.0.0.1", "1")
        self.assertEqual(code, 0, err)
        code, _, err = mbpoll("-m", "tcp", "-a", "1", "-r", "10", "-t", "4", "-1", "-p",
                              str(self.port), "127.0.0.1", "3")
        self.assertEqual(code, 0, err)
        code, out, err = mbpoll("-m", "tcp", "-a", "1", "-r", "1", "-c", "4", "-t", "0", "-1",
                                "-p", str(self.port), "127.0.0.1")
        self.assertEqual(code, 0, err)
        self.assertEqual(mbpoll_values(out), {1: "1", 2: "1", 3: "1", 4: "1"})
        code, out, err = mbpoll("-m", "tcp", "-a", "1", "-r", "1", "-c", "10", "-t", "4", "-1",
                                "-p", str(self.port), "127.0.0.1")
        self.assertEqual(code, 0, err)
        self.assertEqual(int(mbpoll_values(out)[10]), 3)
        # A coil that is no signal is refused, as before.
        code, _, err = mbpoll("-m", "tcp", "-a", "1", "-r", "5", "-t", "0", "-1", "-p",
                              str(self.port), "127.0.0.1", "1")
        self.assertNotEqual(code, 0)
        self.assertIn("Illegal data address", err)

        status = self.sim.status()
        self.assertEqual(status["coils"], {"lamp_green": True, "lamp_amber": True,
                                           "lamp_red": True, "buzzer": True})
        self.assertEqual(status["registers"]["message_code"], 3)
        signals = status["signals"]
        self.assertEqual([(w["which"], w["value"], w["client"], w["accepted"])
                          for w in signals[:5]],
                         [("lamp_green", 1, local, True), ("lamp_amber", 0, local, True),
                          ("lamp_red", 1, local, True), ("buzzer", 1, local, True),
                          ("message_code", 5, local, True)])
        self.assertEqual([(w["which"], w["value"], w["accepted"]) for w in signals[5:]],
                         [("lamp_amber", 1, True), ("message_code", 3, True)])
        for w in signals[5:]:  # each mbpoll run is a connection of its own
            self.assertRegex(w["client"], r"^127\.0\.0\.1:\d+$")
            self.assertNotEqual(w["client"], local)
        self.assertNotEqual(signals[5]["client"], signals[6]["client"])
        for w in signals:
            self.assertRegex(w["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(status["signal_writes_total"], 7)
        # No signal is an interlock write, and none moved it.
        self.assertEqual(status["interlock_writes"], [])
        self.assertEqual(status["registers"]["interlock"], 0)

    def test_fault_disconnect_then_clear(self):
        c = self.client()
        self.read(c)
        self.sim.ok("fault disconnect")
        self.assertTrue(self.sim.status()["faults"]["disconnect"])

        def dropped():
            try:
                return c.read_holding_registers(0, 9, slave=1).isError()
            except Exception:  # pymodbus may raise ConnectionException
                return True
        wait_for(dropped, "the connection to drop")
        code, _, _ = mbpoll("-m", "tcp", "-a", "1", "-r", "1", "-c", "9", "-t", "4", "-1",
                            "-o", "1", "-p", str(self.port), "127.0.0.1")
        self.assertNotEqual(code, 0)
        self.sim.ok("clear")
        fresh = self.client()
        self.read(fresh)
        code, _, err = mbpoll("-m", "tcp", "-a", "1", "-r", "1", "-c", "9", "-t", "4", "-1",
                              "-p", str(self.port), "127.0.0.1")
        self.assertEqual(code, 0, err)

    def test_fault_nan(self):
        c = self.client()
        self.place_and_settle()
        self.sim.ok("fault nan")
        regs = self.read(c)
        self.assertTrue(math.isnan(regs_float(regs[0], regs[1])))
        self.assertEqual(regs[4] & PRESENT, PRESENT)
        self.assertIsNone(self.sim.status()["registers"]["gross_kg"])
        code, out, err = mbpoll("-m", "tcp", "-a", "1", "-r", "1", "-c", "1", "-t", "4:float",
                                "-B", "-1", "-p", str(self.port), "127.0.0.1")
        self.assertEqual(code, 0, err)
        self.assertEqual(mbpoll_values(out)[1].lower(), "nan")
        self.sim.ok("clear")
        regs = self.read(c)
        self.assertAlmostEqual(regs_float(regs[0], regs[1]), 16.0, places=3)

    def test_fault_stuck_freezes_gross_and_heartbeat(self):
        c = self.client()
        self.place_and_settle()
        wait_for(lambda: self.read(c)[7] >= 1, "a heartbeat")
        self.sim.ok("fault stuck")
        frozen = self.read(c)
        self.sim.ok("remove")
        time.sleep(2.5)  # more than two heartbeats' worth
        regs = self.read(c)
        self.assertEqual(regs[0:2], frozen[0:2])
        self.assertEqual(regs[7], frozen[7])
        self.assertEqual(regs[4] & PRESENT, 0)  # the status bits stay live
        self.sim.ok("clear")
        wait_for(lambda: self.read(c)[7] > frozen[7], "the heartbeat to go on")
        regs = self.read(c)
        self.assertEqual(regs_float(regs[0], regs[1]), 0.0)

    def test_fault_code_and_overload(self):
        c = self.client()
        self.sim.ok("fault code 42")
        regs = self.read(c)
        self.assertEqual(regs[4] & FAULT, FAULT)
        self.assertEqual(regs[8], 42)
        self.sim.ok("clear")
        self.sim.ok("place 70 85")
        regs = self.read(c)
        self.assertEqual(regs[4] & OVERLOAD, OVERLOAD)

    def test_several_clients_at_once(self):
        clients = [self.client() for _ in range(6)]
        for _ in range(3):
            for c in clients:
                self.read(c)
        self.assertEqual(self.sim.status()["modbus"]["clients"], 6)
        code, _, err = mbpoll("-m", "tcp", "-a", "1", "-r", "1", "-c", "9", "-t", "4", "-1",
                              "-p", str(self.port), "127.0.0.1")
        self.assertEqual(code, 0, err)

    def test_garbage_does_not_hurt(self):
        # Control port: every line answered, garbage with an error.
        for line in ("bogus", "place", "place 1", "place x y", "place 0 5", "place nan 1",
                     "fault", "fault overshoot -1", "fault code 0", "fault code 1.5",
                     "remove", "status extra", "\x00\xff\xfe", "drift 1e999"):
            with self.subTest(line=line):
                self.assertTrue(self.sim.control(line).startswith("error: "), line)
        self.assertEqual(self.sim.control("x" * 5000), "error: line too long")
        self.sim.ok("place 15 1")
        self.assertTrue(self.sim.control("place 15 1").startswith("error: "))
        # Modbus port: noise, a request cut short, a client gone mid-request.
        for payload in (b"hello, scale\r\n" * 20, bytes(range(256)),
                        b"\x00\x01\x00\x00\x00\x06\x01\x10\x00\x02",  # half a write
                        b"\x00\x01\x00\x00\x00\x06\x01"):
            with self.subTest(payload=payload[:12]):
                s = socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE)
                s.sendall(payload)
                s.close()
        self.read(self.client())
        self.assertEqual(self.sim.proc.poll(), None)

    def test_sigint_ends_with_status_0(self):
        self.read(self.client())
        self.sim.proc.send_signal(signal.SIGINT)
        self.assertEqual(self.sim.proc.wait(timeout=DEADLINE), 0)
        self.assertEqual(self.sim.stop(), 0)  # already ended: nothing more is sent


class Rtu(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pingma-scale-sim-")
        self.a, self.b = os.path.join(self.dir, "a"), os.path.join(self.dir, "b")
        self.socat = subprocess.Popen(["socat", "-d", "-d", f"pty,raw,echo=0,link={self.a}",
                                       f"pty,raw,echo=0,link={self.b}"],
                                      stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(self.a) and os.path.exists(self.b), "socat's ptys")
        self.sim = Sim("--rtu", self.a, "--baud", "9600", "--parity", "N", "--control",
                       "127.0.0.1:0", "--flow-kg-s", FLOW)

    def tearDown(self):
        try:
            self.assertEqual(self.sim.stop(), 0, "\n".join(self.sim.err_lines))
        finally:
            self.socat.terminate()
            self.socat.wait(timeout=DEADLINE)
            shutil.rmtree(self.dir, ignore_errors=True)

    def mbpoll_rtu(self, *args):
        return mbpoll("-m", "rtu", "-b", "9600", "-P", "none", "-a", "1", *args)

    def test_ready_line_names_the_device(self):
        self.assertEqual(self.sim.modbus, f"rtu {self.a}")

    def test_mbpoll_and_pymodbus_fill_over_rtu(self):
        self.sim.ok("place 15.6 0.4")
        wait_for(lambda: self.sim.status()["bits"]["stable"], "a stable reading")
        code, out, err = self.mbpoll_rtu("-r", "1", "-c", "9", "-t", "4", "-1", self.b)
        self.assertEqual(code, 0, err)
        regs = {k: int(v) for k, v in mbpoll_values(out).items()}
        self.assertAlmostEqual(regs_float(regs[1], regs[2]), 16.0, places=4)
        self.assertEqual(regs[5], STABLE | PRESENT)
        code, _, err = self.mbpoll_rtu("-r", "3", "-t", "4:float", "-B", "-1", self.b, "30.5")
        self.assertEqual(code, 0, err)
        code, _, err = self.mbpoll_rtu("-r", "9", "-t", "4", "-1", self.b, "1")
        self.assertNotEqual(code, 0)
        self.assertIn("Illegal data address", err)
        # Another unit on the bus is not us, and does not cost the next request.
        code, _, _ = mbpoll("-m", "rtu", "-b", "9600", "-P", "none", "-a", "2", "-r", "1",
                            "-t", "4", "-1", "-o", "0.5", self.b)
        self.assertNotEqual(code, 0)

        c = ModbusSerialClient(port=self.b, baudrate=9600, parity="N", stopbits=1, bytesize=8,
                               timeout=2)
        self.assertTrue(c.connect())
        try:
            r = c.read_holding_registers(0, 9, slave=1)
            self.assertFalse(r.isError(), r)
            self.assertEqual(regs_float(r.registers[2], r.registers[3]), 30.5)
            self.assertFalse(c.write_register(6, 1, slave=1).isError())
            self.assertFalse(c.write_register(5, 1, slave=1).isError())
            r = c.write_register(6, 3, slave=1)
            self.assertTrue(r.isError())
            self.assertEqual(r.exception_code, ILLEGAL_DATA_VALUE)

            def done():
                r = c.read_holding_registers(0, 9, slave=1)
                return r.registers if not r.isError() and r.registers[4] & FILL_DONE else None
            regs = wait_for(done, "the fill to be done")
            self.assertAlmostEqual(regs_float(regs[0], regs[1]), 30.52, places=3)
            self.assertEqual(regs[6], 0)
        finally:
            c.close()
        status = self.sim.status()
        self.assertEqual(status["fills"], 1)
        self.assertEqual([(w["value"], w["client"], w["accepted"])
                          for w in status["interlock_writes"]],
                         [(1, f"rtu {self.a}", True), (3, f"rtu {self.a}", False)])

    def test_signals_over_rtu(self):
        c = ModbusSerialClient(port=self.b, baudrate=9600, parity="N", stopbits=1, bytesize=8,
                               timeout=2)
        self.assertTrue(c.connect())
        try:
            self.assertFalse(c.write_coil(2, True, slave=1).isError())
            self.assertFalse(c.write_register(9, 4, slave=1).isError())
            r = c.write_register(9, 9, slave=1)
            self.assertTrue(r.isError())
            self.assertEqual(r.exception_code, ILLEGAL_DATA_VALUE)
        finally:
            c.close()
        code, _, err = self.mbpoll_rtu("-r", "4", "-t", "0", "-1", self.b, "1")  # the buzzer
        self.assertEqual(code, 0, err)
        code, out, err = self.mbpoll_rtu("-r", "1", "-c", "4", "-t", "0", "-1", self.b)
        self.assertEqual(code, 0, err)
        self.assertEqual(mbpoll_values(out), {1: "0", 2: "0", 3: "1", 4: "1"})
        status = self.sim.status()
        self.assertEqual(status["registers"]["message_code"], 4)
        line = f"rtu {self.a}"
        self.assertEqual([(w["which"], w["value"], w["client"], w["accepted"])
                          for w in status["signals"]],
                         [("lamp_red", 1, line, True), ("message_code", 4, line, True),
                          ("message_code", 9, line, False), ("buzzer", 1, line, True)])

    def test_fault_disconnect_silences_the_line(self):
        self.sim.ok("fault disconnect")
        code, _, _ = self.mbpoll_rtu("-r", "1", "-c", "9", "-t", "4", "-1", "-o", "0.5", self.b)
        self.assertNotEqual(code, 0)
        self.sim.ok("clear")
        code, _, err = self.mbpoll_rtu("-r", "1", "-c", "9", "-t", "4", "-1", self.b)
        self.assertEqual(code, 0, err)


if __name__ == "__main__":
    SIM = sys.argv.pop(1)
    unittest.main()
