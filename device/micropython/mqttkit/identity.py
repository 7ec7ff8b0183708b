# Setting a Device up: its configuration, who it is (its id: config, a file, or the chip's unique id; and
# the password it generated on first boot and presents ever after, docs/security.md: the first
# connection registers it) and its state. Loaded only while Device() sets itself up (device.py drops it).
import json

from . import files, port


def load_identity(config):
    device_id = config.get('device_id') or (files.read_file('device_id') or '').strip()
    if not device_id:
        from . import board
        device_id = board.platform_name() + '_' + board.unique_id()[-8:]
    if not 1 <= len(device_id) <= 64 or [c for c in device_id if not (c.isalpha() or c.isdigit() or c in '_-') or ord(c) > 127]:
        raise ValueError('device id %r is invalid: use 1-64 letters, digits, _ or -' % device_id)
    # Topic roots of the hub (docs/protocol.md [P-2]): the hub refuses these ids, in any case.
    if device_id.lower() in ('homekit', 'cmnd', 'stat', 'tele', 'ota'):
        raise ValueError('device id %r is reserved (HomeKit, cmnd, stat, tele, OTA name the hub\'s topics): choose another' % device_id)
    password = (files.read_file('mqtt_password') or '').strip()
    if not password:
        from . import board
        password = ''.join('%02x' % b for b in board.random_bytes(16))
        files.write_file('mqtt_password', password)
    return device_id, password


def setup(device, config, meta):
    # Device.__init__ then starts Wi-Fi and the watchdog (what it makes must outlive this module).
    stored = files.read_file('config.json')
    device.config = c = {'broker': '127.0.0.1', 'port': 1883, 'ssl': False, 'keepalive': 30, 'backoff_min': 1,
                         'backoff_max': 60, 'queue': 50, 'reset_after': 900, 'watchdog_ms': 0}
    if stored:
        c.update(json.loads(stored))
    if config:
        c.update(config)
    device.id, device.password = load_identity(c)
    device.base = 'HomeKit/' + device.id
    device.meta = dict((field, value) for field, value in meta if value is not None)
    device.client = None
    device.connected = device.running = device.ota_pending = False
    device.queue = []
    device.inflight = []  # (pid, message) sent at QoS 1 and not yet acknowledged
    device.handlers = {}
    device.applied = {}  # /set topic -> (payload, confirmed value) of the last write applied
    device.commands = {}  # the application's own commands (command()); built-in ones are commands.py's
    device.loaded = {}  # module loaded on demand -> ticks of its last use
    device.timers = []
    device.stats = {'reconnects': 0, 'published': 0, 'received': 0, 'dropped': 0}
    # last_said: the last publish under HomeKit/<id>/, what the hub sees of us
    device.started = device.last_contact = device.last_ping = device.last_said = port.ticks_ms()
    device.next_attempt = 0
    device.backoff = c['backoff_min']
    device.wifi_was_up = None
    watchdog_ms = c['watchdog_ms']
    # A blocking network step (connect, a read) may take at most half the watchdog's period.
    device.step_s = max(1, min(10, watchdog_ms // 2000)) if watchdog_ms else 10
