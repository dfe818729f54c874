"""A PCA9685 on a pretend I2C bus: the lowest level there is to fake, for dry runs and tests.

It plays the chip's register file behind the busio.I2C methods the Adafruit driver calls
(MODE1 auto-increment, PRE_SCALE writable only while asleep) and records every write, so
`tubcar calibrate --dry-run` runs the real dialogue and the real driver without hardware
and shows what the chip would have been told.
"""

from __future__ import annotations

from typing import Any

MODE1, PRE_SCALE, LED0_ON_L = 0x00, 0xFE, 0x06
MODE1_SLEEP, MODE1_AI = 0x10, 0x20


class FakePCA9685Bus:
    """busio.I2C look-alike with one PCA9685 at `address`; `writes` logs (register, bytes)."""

    def __init__(self, address: int = 0x40) -> None:
        self.address = address
        self.registers = bytearray(256)
        self.registers[MODE1] = 0x11  # power-on: SLEEP | ALLCALL
        self.registers[PRE_SCALE] = 0x1E
        self.writes: list[tuple[int, bytes]] = []
        self.locked = False

    def try_lock(self) -> bool:
        if self.locked:
            return False
        self.locked = True
        return True

    def unlock(self) -> None:
        self.locked = False

    def _check(self, address: int) -> None:
        if not self.locked:
            raise RuntimeError("I2C bus used without holding its lock")
        if address != self.address:
            raise OSError(f"no ACK from 0x{address:02x}: the PCA9685 is at 0x{self.address:02x}")

    def writeto(self, address: int, buffer: Any, *, start: int = 0, end: int | None = None) -> None:
        self._check(address)
        data = bytes(buffer[start:end])
        if not data:
            return  # a probe
        register, payload = data[0], data[1:]
        self.writes.append((register, payload))
        for offset, byte in enumerate(payload):
            if offset and not self.registers[MODE1] & MODE1_AI:
                break  # without auto-increment the pointer stays put
            target = register + offset
            if target == PRE_SCALE and not self.registers[MODE1] & MODE1_SLEEP:
                continue  # the chip ignores PRE_SCALE writes while awake
            self.registers[target] = byte

    def readfrom_into(self, address: int, buffer: Any, *, start: int = 0, end: int | None = None) -> None:
        self._check(address)
        raise OSError("reads need a register pointer")

    def writeto_then_readfrom(
        self, address: int, out_buffer: Any, in_buffer: Any, **slices: int | None
    ) -> None:
        """busio's slices: out_start/out_end of the register pointer, in_start/in_end to read into."""
        self._check(address)
        register = bytes(out_buffer[slices.get("out_start") or 0 : slices.get("out_end")])[0]
        start = slices.get("in_start") or 0
        end = slices.get("in_end")
        for i in range(start, len(in_buffer) if end is None else end):
            in_buffer[i] = self.registers[register + i - start]

    def led(self, channel: int) -> tuple[int, int]:
        """(ON, OFF) 13-bit register values of LEDn."""
        base = LED0_ON_L + 4 * channel
        regs = self.registers
        return regs[base] | regs[base + 1] << 8, regs[base + 2] | regs[base + 3] << 8

    def describe(self, write: tuple[int, bytes]) -> str:
        """One logged write as a person reads it, e.g. 'LED1 ON=0 OFF=369'."""
        register, payload = write
        if LED0_ON_L <= register < LED0_ON_L + 64 and (register - LED0_ON_L) % 4 == 0 and len(payload) == 4:
            on, off = payload[0] | payload[1] << 8, payload[2] | payload[3] << 8
            return f"LED{(register - LED0_ON_L) // 4} ON={on} OFF={off}"
        name = {MODE1: "MODE1", PRE_SCALE: "PRE_SCALE"}.get(register, f"0x{register:02x}")
        return f"{name} <- {payload.hex(' ') or '(pointer)'}"
