# The port layer: everything that differs between a board (MicroPython: machine, network, esp32) and
# CPython (tests, the PC harness). The rest of the library imports only this module for platform needs.
import sys
import time

MICROPYTHON = sys.implementation.name == 'micropython'


class Reset(BaseException):
    # Raised by reset() on CPython: run_app() restarts the device loop, as a board would reboot. A
    # BaseException, so that handlers guarding against ordinary errors let it through.
    pass


class DeepSleep(BaseException):
    # Raised by deep_sleep() on CPython: run_app() returns, as a board would power down.
    def __init__(self, ms):
        BaseException.__init__(self, "deep sleep for %d ms" % ms)
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

    def _partitions():
        try:
            from esp32 import Partition
        except ImportError:
            return None, None
        return Partition, Partition(Partition.RUNNING)

    def firmware_version():
        uname = getattr(os, 'uname', None)
        return uname().release if uname else '.'.join(str(n) for n in sys.implementation.version[:3])

    def firmware_partitions():
        Partition, running = _partitions()
        if Partition is None:
            return {'count': 1, 'running': 'factory'}
        return {'count': len(Partition.find(Partition.TYPE_APP)), 'running': running.info()[4]}

    class PartitionSink:
        # Streams an image into the spare OTA partition, a 4 KiB block at a time.
        def __init__(self):
            Partition, running = _partitions()
            if Partition is None:
                raise OSError('this board has a single firmware partition: no OTA firmware updates')
            self.part = running.get_next_update()
            self.buffer = bytearray()
            self.block = 0

        def write(self, chunk):
            self.buffer.extend(chunk)
            while len(self.buffer) >= 4096:
                self.part.writeblocks(self.block, self.buffer[:4096])
                self.buffer = self.buffer[4096:]
                self.block += 1

        def finish(self):
            if self.buffer:
                self.part.writeblocks(self.block, self.buffer + b'\xff' * (4096 - len(self.buffer)))
            self.part.set_boot()

        def abort(self):
            self.buffer = bytearray()

    def firmware_sink():
        return PartitionSink()

    def firmware_keep():
        Partition, _running = _partitions()
        if Partition is None:
            return 'single partition: nothing to keep'
        Partition.mark_app_valid_cancel_rollback()
        return 'firmware %s kept' % firmware_version()

    def firmware_boot():
        pass  # the ESP-IDF bootloader does this on a board

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

    # Firmware on CPython: two "partitions" are files (firmware_a.bin, firmware_b.bin) holding a JSON
    # image {"version": "...", "boots": true}; boot.json plays the bootloader's state.
    def _boot_state():
        import json
        text = read_file('boot.json')
        return json.loads(text) if text else {'running': None, 'pending': None, 'confirmed': True, 'previous': None}

    def _save_boot(state):
        import json
        write_file('boot.json', json.dumps(state))

    def _image(slot):
        import json
        text = read_file('firmware_%s.bin' % slot) if slot else None
        try:
            return json.loads(text) if text else None
        except ValueError:
            return {'version': 'corrupt', 'boots': False}

    def firmware_version():
        image = _image(_boot_state()['running'])
        return image['version'] if image else os.environ.get('MQTTKIT_FIRMWARE', '1.0.0')

    def firmware_partitions():
        return {'count': 2, 'running': _boot_state()['running'] or 'a'}

    def _spare():
        return 'b' if (_boot_state()['running'] or 'a') == 'a' else 'a'

    class FirmwareFileSink:
        def __init__(self):
            self.slot = _spare()
            self.name = 'firmware_%s.bin' % self.slot
            self.f = open(path(self.name + '.part'), 'wb')

        def write(self, chunk):
            self.f.write(chunk)

        def finish(self):
            self.f.close()
            remove_file(self.name)
            os.rename(path(self.name + '.part'), path(self.name))
            state = _boot_state()
            state['pending'] = self.slot
            _save_boot(state)

        def abort(self):
            self.f.close()
            remove_file(self.name + '.part')

    def firmware_sink():
        return FirmwareFileSink()

    def firmware_keep():
        state = _boot_state()
        state['confirmed'] = True
        _save_boot(state)
        return 'firmware %s kept' % firmware_version()

    def firmware_boot():
        # The bootloader: try a pending image; an image that does not start, or one that was not
        # confirmed (keepversion) before the next reboot, falls back to the previous one.
        state = _boot_state()
        if state['pending']:
            image = _image(state['pending'])
            if image and image.get('boots', True):
                state['previous'], state['running'] = state['running'], state['pending']
                state['confirmed'] = False
                note = None
            else:
                note = 'rolled back: firmware %s did not start' % (image or {}).get('version')
            state['pending'] = None
        elif not state['confirmed']:
            note = 'rolled back: firmware %s was not confirmed' % firmware_version()
            state['running'], state['confirmed'] = state['previous'], True
        else:
            return
        _save_boot(state)
        if note:
            write_file('last_reboot.txt', note)


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
