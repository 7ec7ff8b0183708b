# The board layer: what the library needs from MicroPython on an ESP32 or ESP8266 (machine, network,
# time). Only board code lives here; the PC stand-in (tests, the PC harness) is device/micropython/pc/,
# which is never installed on a board. What differs between the two chips is in chip_esp32.py or
# chip_esp8266.py: a board has exactly one of them (device/micropython/ports.json).
import gc
import machine
import network
import os
import sys
from time import sleep_ms, ticks_diff, ticks_ms  # noqa: F401 (the library's clock: port.ticks_ms, ...)

try:
    from .chip_esp32 import watchdog, firmware_partitions, firmware_running, firmware_sink, firmware_keep
except ImportError:
    from .chip_esp8266 import watchdog, firmware_partitions, firmware_running, firmware_sink, firmware_keep


def unique_id():
    import binascii
    return binascii.hexlify(machine.unique_id()).decode()


def platform_name():
    return sys.platform  # 'esp32', 'esp8266'


def random_bytes(n):
    # ESP32 and ESP8266 have a hardware RNG behind os.urandom; a build without it seeds random from it.
    if hasattr(os, 'urandom'):
        return os.urandom(n)
    import random
    return bytes(random.getrandbits(8) for _ in range(n))


def mem_free():
    gc.collect()
    return gc.mem_free()


def reset_cause():
    cause = machine.reset_cause()
    for name in ('PWRON_RESET power on', 'HARD_RESET hard reset', 'WDT_RESET watchdog', 'DEEPSLEEP_RESET wake from deep sleep', 'SOFT_RESET soft reset'):
        if getattr(machine, name.split(' ')[0], None) == cause:
            return name[name.find(' ') + 1:]
    return 'unknown (%d)' % cause


def reset():
    machine.reset()


def deep_sleep(ms):
    machine.deepsleep(ms)


def print_exception(e, stream):
    sys.print_exception(e, stream)


def firmware_version():
    # The MicroPython release (os.uname exists on ESP32/ESP8266; a build without it has the version).
    return os.uname().release if hasattr(os, 'uname') else '.'.join(str(n) for n in sys.implementation.version[:3])


def wifi_connect(ssid, password):
    # Starts the connection and returns a function that tells whether the link is up.
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if ssid and not wlan.isconnected():
        wlan.connect(ssid, password)
    return wlan.isconnected


def local_address(_sock):
    # The board's own IP, for the hub's pull server [O-4]. MicroPython's sockets have no getsockname
    # (not on ESP32, not on ESP8266): the network interface knows the address.
    return network.WLAN(network.STA_IF).ifconfig()[0]
