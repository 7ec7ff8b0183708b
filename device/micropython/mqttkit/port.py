# The board layer the library needs all the time: the clock, reset, deep sleep, Wi-Fi, the watchdog
# (machine, network, time on an ESP32 or ESP8266). What the board is asked rarely is board.py, loaded on
# demand. Only board code lives here; the PC stand-in (tests, the PC harness) is device/micropython/pc/,
# which is never installed on a board. What differs between the two chips is in chip_esp32.py or
# chip_esp8266.py: a board has exactly one of them (device/micropython/ports.json).
import machine
import sys
from time import sleep_ms, ticks_diff, ticks_ms  # noqa: F401 (the library's clock: port.ticks_ms, ...)


def watchdog(timeout_ms):
    try:
        from .chip_esp32 import watchdog
    except ImportError:
        from .chip_esp8266 import watchdog
    return watchdog(timeout_ms)


def reset():
    machine.reset()


def deep_sleep(ms):
    machine.deepsleep(ms)


def print_exception(e, stream):
    sys.print_exception(e, stream)


def wifi_connect(ssid, password):
    # Starts the connection and returns a function that tells whether the link is up. (`network` is
    # imported here: a board without it, a serial-link host, never calls this.)
    import network  # pyright: ignore[reportMissingImports] (absent on a serial-link host, which never calls this)
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if ssid and not wlan.isconnected():
        wlan.connect(ssid, password)
    return wlan.isconnected
