# The PC stand-in for mqttkit/port.py: the same functions on CPython, for the tests and for running a
# device program on a PC. Never installed on a board: pc/run.py puts it in place as `mqttkit.port`
# before the library is imported. A reset restarts the program, deep sleep ends it, firmware
# "partitions" are files, and the watchdog is a thread that "resets" the device when it is not fed.
import json
import os
import sys
import threading
import time
import traceback
import uuid

_started = time.monotonic()


class Reset(BaseException):
    # Raised by reset(): run.py starts the program again, as a board reboots. A BaseException, so that
    # handlers guarding against ordinary errors let it through.
    pass


class DeepSleep(BaseException):
    # Raised by deep_sleep(): run.py ends, as a board powers down.
    def __init__(self, ms):
        BaseException.__init__(self, 'deep sleep for %d ms' % ms)
        self.ms = ms


def _files():
    from mqttkit import files
    return files


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


def wifi_connect(ssid, password):
    return lambda: True


def local_address(sock):
    # On a PC the MQTT socket knows its local address (a board asks its network interface).
    return sock.getsockname()[0] if sock is not None else None


# --- the watchdog --------------------------------------------------------------------------------------
_dog = None


class Watchdog:
    # Behaves like machine.WDT: not fed for timeout_ms, the "board" resets (the process ends with exit
    # code 3 after recording why). It reports each new longest gap between feeds as an event line
    # {"watchdog": {...}} on stdout, which the tests read.
    def __init__(self, timeout_ms):
        self.timeout_ms = timeout_ms
        self.last = time.monotonic()
        self.max_gap_ms = 0
        self.feeds = 0
        thread = threading.Thread(target=self._watch, daemon=True)
        thread.start()

    def feed(self):
        now = time.monotonic()
        gap = int((now - self.last) * 1000)
        self.last = now
        self.feeds += 1
        if gap > self.max_gap_ms or self.feeds == 1:
            self.max_gap_ms = max(gap, self.max_gap_ms)
            print(json.dumps({'watchdog': {'feeds': self.feeds, 'max_gap_ms': self.max_gap_ms}}), flush=True)

    def _watch(self):
        while _dog is self:
            if (time.monotonic() - self.last) * 1000 > self.timeout_ms:
                _files().write_file('last_reboot.txt', 'watchdog: not fed for %d ms' % self.timeout_ms)
                print(json.dumps({'watchdog': 'reset'}), flush=True)
                os._exit(3)
            time.sleep(0.02)


def watchdog(timeout_ms):
    global _dog
    _dog = Watchdog(timeout_ms)
    return _dog


def stop_watchdog():
    # A reset stops the hardware watchdog (the program starts it again).
    global _dog
    _dog = None


# --- firmware: two "partitions" are files (firmware_a.bin, firmware_b.bin) holding a JSON image
# {"version": "...", "boots": true}; boot.json plays the bootloader's state. -------------------------
def _boot_state():
    text = _files().read_file('boot.json')
    return json.loads(text) if text else {'running': None, 'pending': None, 'confirmed': True, 'previous': None}


def _save_boot(state):
    _files().write_file('boot.json', json.dumps(state))


def _image(slot):
    text = _files().read_file('firmware_%s.bin' % slot) if slot else None
    try:
        return json.loads(text) if text else None
    except ValueError:
        return {'version': 'corrupt', 'boots': False}


def firmware_version():
    image = _image(_boot_state()['running'])
    return image['version'] if image else os.environ.get('MQTTKIT_FIRMWARE', '1.0.0')


def firmware_running():
    return _boot_state()['running'] or 'a'


def firmware_partitions():
    return {'count': 2, 'running': firmware_running()}


class FirmwareFileSink:
    def __init__(self):
        files = _files()
        self.label = 'b' if firmware_running() == 'a' else 'a'
        self.name = 'firmware_%s.bin' % self.label
        self.f = open(files.path(self.name + '.part'), 'wb')

    def write(self, chunk):
        self.f.write(chunk)

    def finish(self):
        files = _files()
        self.f.close()
        files.remove_file(self.name)
        os.rename(files.path(self.name + '.part'), files.path(self.name))
        state = _boot_state()
        state['pending'] = self.label
        _save_boot(state)

    def abort(self):
        self.f.close()
        _files().remove_file(self.name + '.part')


def firmware_sink():
    return FirmwareFileSink()


def firmware_keep():
    state = _boot_state()
    state['confirmed'] = True
    _save_boot(state)
    return 'firmware %s kept' % firmware_version()


def firmware_boot():
    # The bootloader, run by run.py before each start: try a pending image; an image that does not
    # start, or one that was not confirmed (keepversion) before the next reboot, falls back.
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
        _files().write_file('last_reboot.txt', note)


class _StandIn:
    # An import finder: `mqttkit.port` and `mqttkit.board` are this module, also when the library drops
    # board.py after use and imports it again (a board's own board.py needs `machine`).
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name in ('mqttkit.port', 'mqttkit.board'):
            import importlib.util
            return importlib.util.spec_from_loader(name, cls)
        return None

    @staticmethod
    def create_module(spec):
        return sys.modules[__name__]

    @staticmethod
    def exec_module(module):
        pass


def install(root):
    # Makes this module the library's `mqttkit.port` and `mqttkit.board` and points the library's files
    # at `root`.
    if _StandIn not in sys.meta_path:
        sys.meta_path.insert(0, _StandIn)
    for name in ('port', 'board'):
        sys.modules['mqttkit.' + name] = sys.modules[__name__]
    import mqttkit
    from mqttkit import files
    mqttkit.port = mqttkit.board = sys.modules[__name__]
    files.ROOT = root
