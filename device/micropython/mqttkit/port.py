# The port layer: everything that differs between a board (MicroPython: machine, network, esp32) and
# CPython (tests, the PC harness). The rest of the library imports only this module for platform needs.
import sys
import time

MICROPYTHON = sys.implementation.name == 'micropython'


class Reset(Exception):
    # Raised by reset() on CPython: run_app() restarts the device loop, as a board would reboot.
    pass


class DeepSleep(Exception):
    # Raised by deep_sleep() on CPython: run_app() returns, as a board would power down.
    def __init__(self, ms):
        Exception.__init__(self, 'deep sleep for %d ms' % ms)
        self.ms = ms


if MICROPYTHON:
    import gc
    import machine
    import os

    ROOT = ''

    def ticks_ms():
        return time.ticks_ms()

    def ticks_diff(a, b):
        return time.ticks_diff(a, b)

    def sleep_ms(ms):
        time.sleep_ms(ms)

    def unique_id():
        import ubinascii
        return ubinascii.hexlify(machine.unique_id()).decode()

    def platform_name():
        return sys.platform  # 'esp32', 'esp8266', 'rp2', ...

    def random_bytes(n):
        # ESP32/ESP8266 have a hardware RNG behind os.urandom; ports without it seed random from it.
        if hasattr(os, 'urandom'):
            return os.urandom(n)
        import random
        return bytes(random.getrandbits(8) for _ in range(n))

    def mem_free():
        gc.collect()
        return gc.mem_free()

    def reset_cause():
        causes = {
            getattr(machine, 'PWRON_RESET', -1): 'power on',
            getattr(machine, 'HARD_RESET', -2): 'hard reset',
            getattr(machine, 'WDT_RESET', -3): 'watchdog',
            getattr(machine, 'DEEPSLEEP_RESET', -4): 'wake from deep sleep',
            getattr(machine, 'SOFT_RESET', -5): 'soft reset',
        }
        return causes.get(machine.reset_cause(), 'unknown (%d)' % machine.reset_cause())

    def reset():
        machine.reset()

    def deep_sleep(ms):
        machine.deepsleep(ms)

    def print_exception(e, stream):
        sys.print_exception(e, stream)

    def watchdog(timeout_ms):
        return machine.WDT(timeout=timeout_ms)

    def wifi_connect(ssid, password):
        # Starts the connection and returns a function that tells whether the link is up.
        import network
        wlan = network.WLAN(network.STA_IF)
        wlan.active(True)
        if ssid and not wlan.isconnected():
            wlan.connect(ssid, password)
        return wlan.isconnected

else:
    import os
    import traceback
    import uuid

    ROOT = os.environ.get('MQTTKIT_ROOT', '.')
    _started = time.monotonic()

    def ticks_ms():
        return int((time.monotonic() - _started) * 1000)

    def ticks_diff(a, b):
        return a - b

    def sleep_ms(ms):
        time.sleep(ms / 1000)

    def unique_id():
        return '%012x' % uuid.getnode()

    def platform_name():
        return 'cpython'

    def random_bytes(n):
        return os.urandom(n)

    def mem_free():
        return None

    def reset_cause():
        return 'power on'

    def reset():
        raise Reset()

    def deep_sleep(ms):
        raise DeepSleep(ms)

    def print_exception(e, stream):
        traceback.print_exception(type(e), e, e.__traceback__, file=stream)

    def watchdog(timeout_ms):
        return None

    def wifi_connect(ssid, password):
        return lambda: True


def path(name):
    return ROOT + '/' + name if ROOT else name


def read_file(name):
    try:
        with open(path(name)) as f:
            return f.read()
    except OSError:
        return None


def write_file(name, text):
    # Write to a temporary name first: a power cut must not leave half a password behind.
    temporary = path(name + '.tmp')
    with open(temporary, 'w') as f:
        f.write(text)
    try:
        os.remove(path(name))
    except OSError:
        pass
    os.rename(temporary, path(name))


def remove_file(name):
    try:
        os.remove(path(name))
        return True
    except OSError:
        return False
