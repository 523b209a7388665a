#!/usr/bin/python3
"""A Modbus server from pymodbus 3.0 (a program this project did not write) for scale_test.

It serves a datastore laid out like a scale's register map, over TCP or Modbus RTU on a
serial device (one end of a socat pty pair), and takes control lines on stdin:

  set KIND ADDR V [V ...]   set values from the scale's side (not logged)   -> ok
  get KIND ADDR N           read values                                      -> values V ...
  log                       the client's writes so far, in order             -> log h0=1,2 c63=0
  clearlog                                                                   -> ok

KIND is h (holding), i (input), c (coil) or d (discrete input). When ready it prints
"modbus tcp PORT" or "modbus rtu DEVICE". It exits when stdin closes, so a test that
dies leaves no server behind. Runs only under /usr/bin/python3 (Debian's pymodbus).
"""
import argparse
import asyncio
import sys

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.framer.rtu_framer import ModbusRtuFramer
from pymodbus.server.async_io import ModbusSerialServer, ModbusTcpServer

# Block sizes per kind: one past the last address each map uses, so that any address
# beyond answers with Modbus exception 2 (illegal data address), as the device would.
LAYOUTS = {
    # BDE-2007 (station/profiles/bde-2007.toml): discrete inputs up to 10056, coils up
    # to the site's interlock relay at coil 63, input registers up to 30014, holding
    # registers up to 40012.
    "bde-2007": {"d": 56, "c": 64, "i": 14, "h": 12},
    # pingma-fill-v1 (API.md): holding registers 0-9 and coils 0-3 (the signals).
    "pingma-fill-v1": {"d": 1, "c": 4, "i": 1, "h": 10},
}

WRITES = []  # (kind letter, address, values) in the order the client wrote them


class LoggedBlock(ModbusSequentialDataBlock):
    """A data block that records every write the Modbus client makes."""

    def __init__(self, kind, size):
        super().__init__(0, [0] * size)
        self.kind = kind

    def setValues(self, address, values):  # noqa: N802 (pymodbus's name)
        if not isinstance(values, list):
            values = [values]
        WRITES.append((self.kind, address, [int(v) for v in values]))
        super().setValues(address, values)

    def set_quietly(self, address, values):
        ModbusSequentialDataBlock.setValues(self, address, values)


def answer(line):
    print(line, flush=True)


def control(blocks, line):
    words = line.split()
    if not words:
        return
    try:
        if words[0] == "set":
            block = blocks[words[1]]
            address = int(words[2])
            values = [int(w, 0) for w in words[3:]]
            if address < 0 or address + len(values) > len(block.values):
                answer("error address")
                return
            block.set_quietly(address, values)
            answer("ok")
        elif words[0] == "get":
            block = blocks[words[1]]
            address, count = int(words[2]), int(words[3])
            values = block.getValues(address, count)
            answer("values " + " ".join(str(int(v)) for v in values))
        elif words[0] == "log":
            answer("log " + " ".join(
                f"{k}{a}=" + ",".join(str(v) for v in vs) for k, a, vs in WRITES))
        elif words[0] == "clearlog":
            WRITES.clear()
            answer("ok")
        else:
            answer("error unknown command")
    except (KeyError, IndexError, ValueError) as exc:
        answer(f"error {exc}")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="bde-2007")
    parser.add_argument("--port", type=int, help="TCP port on 127.0.0.1; 0 picks one")
    parser.add_argument("--rtu", help="serial device for Modbus RTU")
    parser.add_argument("--baud", type=int, default=9600)
    args = parser.parse_args()

    sizes = LAYOUTS[args.layout]
    blocks = {kind: LoggedBlock(kind, size) for kind, size in sizes.items()}
    slave = ModbusSlaveContext(
        di=blocks["d"], co=blocks["c"], ir=blocks["i"], hr=blocks["h"], zero_mode=True)
    context = ModbusServerContext(slaves=slave, single=True)

    if args.rtu:
        server = ModbusSerialServer(
            context, framer=ModbusRtuFramer, port=args.rtu, baudrate=args.baud,
            bytesize=8, parity="N", stopbits=1, timeout=0.05)
        await server.start()
        answer(f"modbus rtu {args.rtu}")
    else:
        server = ModbusTcpServer(
            context, address=("127.0.0.1", args.port or 0), allow_reuse_address=True)
        asyncio.create_task(server.serve_forever())
        await server.serving
        answer(f"modbus tcp {server.server.sockets[0].getsockname()[1]}")

    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        control(blocks, line)
    await server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
