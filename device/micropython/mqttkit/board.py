# What the board says about itself, asked rarely: its chip id and random bytes (identity.py, first boot),
# reset cause, free memory and versions (commands.py), its address and firmware partitions (ota.py).
# Loaded on demand by those modules and dropped with them (device.py). Board code only: on a PC the
# stand-in device/micropython/pc/mqttkit_pc_port.py plays this module and port.py.
import gc
import machine
import os
import sys

try:
    from .chip_esp32 import firmware_partitions, firmware_running, firmware_sink, firmware_keep  # noqa: F401
except ImportError:
    try:
        from .chip_esp8266 import firmware_partitions, firmware_running, firmware_sink, firmware_keep  # noqa: F401
    except ImportError:  # a board without Wi-Fi running mqttkit.link.Host
        from .chip_generic import firmware_partitions, firmware_running, firmware_sink, firmware_keep  # noqa: F401


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


def firmware_version():
    # The MicroPython release (os.uname exists on ESP32/ESP8266; a build without it has the version).
    return os.uname().release if hasattr(os, 'uname') else '.'.join(str(n) for n in sys.implementation.version[:3])


def local_address(_sock):
    # The board's own IP, for the hub's pull server [O-4]. MicroPython's sockets have no getsockname
    # (not on ESP32, not on ESP8266): the network interface knows the address.
    import network  # pyright: ignore[reportMissingImports] (absent on a serial-link host, which never calls this)
    return network.WLAN(network.STA_IF).ifconfig()[0]
