# The Device: speaks mqttkit's topic protocol (docs/protocol.md) over our MQTT client, keeps its link
# up (backoff, keepalive, a queue that survives reconnects, reset after long silence), and answers
# observability commands on cmnd/<id>/OTA (docs/device.md).
import json

from . import files, port
from .identity import load_identity
from .mqtt import MQTTClient, MQTTError, Refused
from . import commands
from .ota import Receiver

VERSION = '0.1.0'
INFLIGHT_WINDOW = 10

# Characteristics a HomeKit write sends as 1/0 that a callback wants as True/False.
BOOL_CHARACTERISTICS = ('On', 'Mute', 'HoldPosition', 'NightVision', 'ProgrammableSwitchOutputState', 'Identify', 'PeriodicSnapshotsActive')

DEFAULTS = {
    'broker': '127.0.0.1',
    'port': 1883,
    'ssl': False,
    'keepalive': 30,
    'backoff_min': 1,
    'backoff_max': 60,
    'queue': 50,
    'reset_after': 900,
    'watchdog_ms': 0,
}


def coerce(characteristic, text):
    if characteristic in BOOL_CHARACTERISTICS:
        return text in ('1', 'true', 'on', 'True')
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def format_value(value):
    if value is True:
        return '1'
    if value is False:
        return '0'
    return str(value)


def service_path(service, index):
    return service if not index else '%s/%d' % (service, index)


class Device:
    def __init__(self, config=None, status=None, name=None, model=None, manufacturer=None, firmware=None):
        stored = files.read_file('config.json')
        self.config = dict(DEFAULTS)
        if stored:
            self.config.update(json.loads(stored))
        if config:
            self.config.update(config)
        self.id, self.password = load_identity(self.config)
        self.base = 'HomeKit/' + self.id
        self.meta = {}
        for field, value in (('name', name), ('model', model), ('manufacturer', manufacturer), ('firmware', firmware)):
            if value is not None:
                self.meta[field] = value
        self.status = status or (lambda event, detail=None: None)
        self.client = None
        self.connected = False
        self.running = False
        self.queue = []
        self.inflight = []  # (pid, message) sent at QoS 1 and not yet acknowledged
        self.handlers = {}
        self.applied = {}  # /set topic -> (payload, confirmed value) of the last write applied
        self.commands = commands.default_commands()
        self.ota = Receiver(self)
        self.ota_pending = False
        self.timers = []
        self.stats = {'reconnects': 0, 'published': 0, 'received': 0, 'dropped': 0}
        self.started = port.ticks_ms()
        self.last_contact = port.ticks_ms()
        self.last_ping = port.ticks_ms()
        self.last_said = port.ticks_ms()  # last publish under HomeKit/<id>/: what the hub sees of us
        self.next_attempt = 0
        self.backoff = self.config['backoff_min']
        self.wifi_up = port.wifi_connect(self.config.get('wifi_ssid'), self.config.get('wifi_password'))
        self.wifi_was_up = None
        watchdog_ms = self.config['watchdog_ms']
        self.dog = port.watchdog(watchdog_ms) if watchdog_ms else None
        # A blocking network step (connect, a read) may take at most half the watchdog's period.
        self.step_s = max(1, min(10, watchdog_ms // 2000)) if watchdog_ms else 10

    # --- the protocol -------------------------------------------------------------------------------
    def publish(self, service, characteristic, value, index=None, retain=False):
        self._enqueue('%s/%s/%s' % (self.base, service_path(service, index), characteristic), format_value(value), retain)

    def set_meta(self, **fields):
        for field, value in fields.items():
            self.meta[field] = value
            self._enqueue('%s/$%s' % (self.base, field), str(value), True)

    def on_set(self, service, characteristic, callback, index=None):
        # callback(value) runs for each HomeKit write. What it returns is published as the confirmed
        # state (None confirms the value as written); a device that cannot obey returns its actual state.
        topic = '%s/%s/%s/set' % (self.base, service_path(service, index), characteristic)
        self.handlers[topic] = (service, characteristic, index, callback)

    def command(self, name):
        # Decorator: registers an extra command for cmnd/<id>/OTA (the OTA receiver adds its own).
        def register(handler):
            self.commands[name] = handler
            return handler
        return register

    def every(self, seconds, callback):
        self.timers.append([int(seconds * 1000), port.ticks_ms(), callback])

    def log(self, text):
        # Answers on stat/<id>/Log, the observability channel.
        self._enqueue('stat/%s/Log' % self.id, text, False)

    # --- the loop -----------------------------------------------------------------------------------
    def run(self):
        # Runs until stop() or sleep(); the port turns a reset into a restart and deep sleep into a return.
        self.running = True
        while self.running:
            self.step(50)
        if self.connected:
            self._announce_offline()

    def stop(self):
        self.running = False

    def step(self, wait_ms=0):
        self._feed()
        self._watch_wifi()
        if not self.connected:
            self._try_connect()
        if self.connected:
            try:
                self._flush()
                if self.client.check_msg(wait_ms):
                    self.last_contact = port.ticks_ms()
                self._flush()
                self._keepalive()
            except MQTTError as e:
                self._lost(str(e))
        elif wait_ms:
            port.sleep_ms(wait_ms)
        self._run_timers()
        if port.ticks_diff(port.ticks_ms(), self.last_contact) > self.config['reset_after'] * 1000:
            commands.record_reboot('no broker contact for %d s' % self.config['reset_after'])
            port.reset()

    def sleep(self, seconds):
        # Give pending commands a moment, stay awake while the hub has an OTA job for us (up to
        # pending_wait seconds), announce sleep, flush, leave cleanly (no last will), sleep.
        if self.connected:
            until = port.ticks_ms() + 500
            while self.connected and port.ticks_diff(until, port.ticks_ms()) > 0:
                self.step(50)
            until = port.ticks_ms() + self.config.get('pending_wait', 120) * 1000
            while self.connected and self.ota_pending and port.ticks_diff(until, port.ticks_ms()) > 0:
                self.step(50)
        if self.connected:
            self._enqueue(self.base + '/$state', 'sleeping %d' % seconds, True)
            until = port.ticks_ms() + 200
            while self.connected and port.ticks_diff(until, port.ticks_ms()) > 0:
                self.step(50)
            self._flush()
            self.client.disconnect()
            self.connected = False
        self.running = False
        port.deep_sleep(int(seconds * 1000))

    # --- internals ----------------------------------------------------------------------------------
    def _enqueue(self, topic, payload, retain):
        self.queue.append((topic, payload, retain))
        if len(self.queue) > self.config['queue']:
            self.queue.pop(0)
            self.stats['dropped'] += 1
        if self.connected:
            try:
                self._flush()
            except MQTTError as e:
                self._lost(str(e))

    def _flush(self):
        # QoS 1 with a small window: a message leaves the queue when sent and is forgotten only when the
        # broker acknowledges it; on a lost connection the unacknowledged ones are sent again.
        if self.inflight:
            self.inflight = [(pid, m) for pid, m in self.inflight if pid in self.client.unacked]
        while self.queue and self.connected and len(self.inflight) < INFLIGHT_WINDOW:
            message = self.queue.pop(0)
            topic, payload, retain = message
            self.inflight.append((self.client.publish(topic, payload, 1, retain), message))
            self.stats['published'] += 1
            if topic.startswith(self.base + '/'):
                self.last_said = port.ticks_ms()

    def _try_connect(self):
        now = port.ticks_ms()
        if port.ticks_diff(now, self.next_attempt) < 0 or not self.wifi_up():
            return
        client = MQTTClient(self.id, self.config['broker'], self.config['port'], self.id, self.password,
                            self.config['keepalive'], self.config['ssl'], self.config.get('ssl_params'))
        client.on_message = self._on_message
        try:
            client.connect(will=(self.base + '/$state', 'offline', 1, True), timeout=self.step_s, feed=self._feed)
        except Refused as e:
            self._retry_later()
            self.status('broker refused', str(e))
            return
        except (MQTTError, OSError) as e:
            self._retry_later()
            self.status('broker lost', str(e))
            return
        self.client = client
        self.connected = True
        self.inflight = []
        self.backoff = self.config['backoff_min']
        self.last_contact = self.last_ping = port.ticks_ms()
        try:
            for topic in (self.base + '/+/+/set', self.base + '/+/+/+/set', 'cmnd/%s/OTA' % self.id, 'cmnd/%s/OTA/pending' % self.id, '%s/OTA' % self.id):
                client.subscribe(topic, 1)
            # Metadata and state go first, ahead of anything queued while away.
            head = [('%s/$%s' % (self.base, f), str(v), True) for f, v in self.meta.items()]
            head.append((self.base + '/$state', 'online', True))
            if self.config['keepalive'] > 0:
                # [P-20] promise the hub a message every keepalive period (an external broker hides our pings)
                head.append((self.base + '/$keepalive', '%d' % self.config['keepalive'], False))
            self.queue = head + self.queue
            self._flush()
        except MQTTError as e:
            self._lost(str(e))
            return
        self.status('broker ok', '%s:%s' % (self.config['broker'], self.config['port']))

    def _flush_now(self, timeout_ms=2000):
        # Before a reset: get the queue out and acknowledged, briefly.
        until = port.ticks_ms() + timeout_ms
        while self.connected and (self.queue or self.inflight) and port.ticks_diff(until, port.ticks_ms()) > 0:
            try:
                self._flush()
                self.client.check_msg(20)
            except MQTTError:
                break

    def _retry_later(self):
        self.next_attempt = port.ticks_ms() + int(self.backoff * 1000)
        self.backoff = min(self.backoff * 2, self.config['backoff_max'])

    def _lost(self, why):
        self.connected = False
        self.queue = [m for _pid, m in self.inflight] + self.queue
        self.inflight = []
        if self.client:
            self.client.close()
        self.stats['reconnects'] += 1
        self._retry_later()
        self.status('broker lost', why)

    def _feed(self):
        if self.dog:
            self.dog.feed()

    def _tick(self):
        # Called by long work inside a message callback (an OTA transfer): feed the watchdog and keep
        # the MQTT link (ping, [P-20] heartbeat), as the loop would.
        self._feed()
        if self.connected:
            try:
                self._keepalive()
            except MQTTError as e:
                self._lost(str(e))

    def _keepalive(self):
        now = port.ticks_ms()
        keepalive = self.config['keepalive']
        if keepalive > 0 and port.ticks_diff(now, self.last_ping) > keepalive * 500:
            self.client.ping()
            self.last_ping = now
        # [P-20] the heartbeat: nothing said for a keepalive period, so say the keepalive again
        if keepalive > 0 and port.ticks_diff(now, self.last_said) >= keepalive * 1000:
            self.last_said = now
            self._enqueue(self.base + '/$keepalive', '%d' % keepalive, False)

    def _watch_wifi(self):
        up = self.wifi_up()
        if up != self.wifi_was_up:
            self.wifi_was_up = up
            self.status('wifi up' if up else 'wifi down')

    def _run_timers(self):
        now = port.ticks_ms()
        for timer in self.timers:
            if port.ticks_diff(now, timer[1]) >= timer[0]:
                timer[1] = now
                self._guard(timer[2])

    def _guard(self, callback, *args):
        # A failing callback must not take the device off the network: record it for msg_exception.
        try:
            return callback(*args)
        except Exception as e:
            commands.record_exception(e)
            self.status('exception', repr(e))
            return None

    def _on_message(self, topic, payload, retained=False):
        self.stats['received'] += 1
        self.last_contact = port.ticks_ms()
        text = payload.decode('utf-8') if isinstance(payload, (bytes, bytearray)) else payload
        handler = self.handlers.get(topic)
        if handler:
            if not text:
                return  # a cleared retained /set (the hub saw our confirmation): not a command
            service, characteristic, index, callback = handler
            last = self.applied.get(topic)
            if retained and last and last[0] == text:
                # A write kept for us while we slept, delivered again on a reconnect before the hub
                # cleared it: applied once already; confirm it again, do not run the callback twice.
                confirmed = last[1]
            else:
                value = coerce(characteristic, text)
                result = self._guard(callback, value)
                confirmed = value if result is None else result
                self.applied[topic] = (text, confirmed)
            self.publish(service, characteristic, confirmed, index)
            return
        if topic == '%s/OTA' % self.id:
            self.ota.on_trigger(text)
            return
        if topic == 'cmnd/%s/OTA/pending' % self.id:
            # [O-7] The hub keeps this retained while an OTA job waits for this device: do not sleep yet.
            self.ota_pending = text.strip() == '1'
            return
        if topic == 'cmnd/%s/OTA' % self.id:
            name = text.strip().split(' ')[0]
            argument = text.strip()[len(name):].strip()
            handler = self.commands.get(name)
            if handler is None:
                self.log('unknown command %s (known: %s)' % (name, ', '.join(sorted(self.commands))))
                return
            try:
                answer = handler(self, argument)
            except Exception as e:
                commands.record_exception(e)
                answer = 'command %s failed: %r (details: msg_exception)' % (name, e)
            if answer is not None:
                self.log(commands.encode(answer))

    def _announce_offline(self):
        try:
            self.client.publish(self.base + '/$state', 'offline', 1, True)
            self.client.disconnect()
        except MQTTError:
            pass
        self.connected = False

    def uptime_s(self):
        return port.ticks_diff(port.ticks_ms(), self.started) // 1000


def run_app(main):
    # Runs the application. An uncaught exception is kept for msg_exception and the board reboots.
    try:
        main()
    except Exception as e:
        commands.record_exception(e)
        commands.record_reboot('uncaught exception: %r' % e)
        port.reset()
