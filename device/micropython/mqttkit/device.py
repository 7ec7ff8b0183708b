# The Device: speaks mqttkit's topic protocol (docs/protocol.md) over our MQTT client and keeps its link
# up (backoff, keepalive, a queue that survives reconnects, reset after long silence). What is rarely
# needed loads on demand and goes again (docs/device.md, "Memory and boards"): identity.py while the
# Device sets itself up, connect.py while it is not connected, commands.py when a command arrives,
# ota.py for an OTA trigger or command.
import gc
import sys

from . import files, port
from .mqtt import MQTTClient, MQTTError  # noqa: F401 (MQTTClient: a type for the checks)

VERSION = '0.1.0'
# A module loaded on demand stays this long after its last use: the hub's commands when a device comes
# online (getversion, msg_reboot, msg_exception) or one OTA session's open/triggers/commit compile it once.
LINGER_MS = 30000
# The commands ota.py answers: they load ota.py alone, without commands.py beside it (a smaller peak).
OTA_COMMANDS = ' open commit discard reboot hashes keepversion partitions '
# Characteristics a HomeKit write sends as 1/0 that a callback wants as True/False.
BOOLS = ' On Mute HoldPosition NightVision ProgrammableSwitchOutputState Identify PeriodicSnapshotsActive '


def drop(name):
    # Unloads mqttkit.<name>, and board.py with the chip module (loaded for it, or by a watchdog): nothing
    # refers to them any more, so their code and tables are garbage.
    package = sys.modules.get('mqttkit')
    for name in (name, 'board', 'chip_esp32', 'chip_esp8266'):
        sys.modules.pop('mqttkit.' + name, None)
        if hasattr(package, name):
            delattr(package, name)
    gc.collect()


class Device:
    # What identity.setup() gives a Device, declared for the type checks (MicroPython compiles no code
    # for a bare annotation).
    id: str
    password: str
    base: str
    config: dict
    meta: dict
    client: 'MQTTClient'
    connected: bool
    running: bool
    ota_pending: bool
    queue: list
    inflight: list
    handlers: dict
    applied: dict
    commands: dict
    loaded: dict
    timers: list
    stats: dict
    started: int
    last_contact: int
    last_ping: int
    last_said: int
    next_attempt: int
    backoff: int
    wifi_was_up: object
    step_s: int

    def __init__(self, config=None, status=None, name=None, model=None, manufacturer=None, firmware=None):
        # Setting up runs once: identity.py does it, and goes again.
        # (Nothing made there may outlive it: a function would keep its module's globals alive.)
        self.status = status or (lambda event, detail=None: None)
        __import__('mqttkit.identity', None, None, ('identity',)).setup(self, config, (('name', name), ('model', model), ('manufacturer', manufacturer), ('firmware', firmware)))
        drop('identity')
        c = self.config
        self.wifi_up = port.wifi_connect(c.get('wifi_ssid'), c.get('wifi_password'))
        self.dog = port.watchdog(c['watchdog_ms']) if c['watchdog_ms'] else None

    # --- the protocol -------------------------------------------------------------------------------
    def publish(self, service, characteristic, value, index=None, retain=False):
        if value is True or value is False:
            value = int(value)
        self._enqueue('%s/%s%s/%s' % (self.base, service, '/%d' % index if index else '', characteristic), str(value), retain)

    def set_meta(self, **fields):
        for field, value in fields.items():
            self.meta[field] = value
            self._enqueue('%s/$%s' % (self.base, field), str(value), True)

    def on_set(self, service, characteristic, callback, index=None):
        # callback(value) runs for each HomeKit write. What it returns is published as the confirmed
        # state (None confirms the value as written); a device that cannot obey returns its actual state.
        topic = '%s/%s%s/%s/set' % (self.base, service, '/%d' % index if index else '', characteristic)
        self.handlers[topic] = (service, characteristic, index, callback)

    def command(self, name):
        # Decorator: registers an extra command for cmnd/<id>/OTA.
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
            try:
                self.client.publish(self.base + '/$state', 'offline', 1, True)
                self.client.disconnect()
            except MQTTError:
                pass
            self.connected = False

    def stop(self):
        self.running = False

    def step(self, wait_ms=0):
        self._feed()
        up = self.wifi_up()
        if up != self.wifi_was_up:
            self.wifi_was_up = up
            self.status('wifi up' if up else 'wifi down')
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
        now = port.ticks_ms()
        for timer in self.timers:
            if port.ticks_diff(now, timer[1]) >= timer[0]:
                timer[1] = now
                self._guard(timer[2])
        if self.loaded:
            for name in list(self.loaded):
                if port.ticks_diff(now, self.loaded[name]) >= LINGER_MS:
                    del self.loaded[name]
                    drop(name)
        if port.ticks_diff(now, self.last_contact) > self.config['reset_after'] * 1000:
            files.record_reboot('no broker contact for %d s' % self.config['reset_after'])
            port.reset()

    def sleep(self, seconds):
        # Leaves cleanly and deep-sleeps (connect.py, which also opens the session, does it).
        __import__('mqttkit.connect', None, None, ('connect',)).sleep(self, seconds)

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
        # QoS 1 with a window of 10: a message leaves the queue once the client has taken it (a send that
        # raises leaves it queued: the socket died under it) and is forgotten only when the broker
        # acknowledges it; on a lost connection the unacknowledged ones are sent again.
        if self.inflight:
            self.inflight = [(pid, m) for pid, m in self.inflight if pid in self.client.unacked]
        while self.queue and self.connected and len(self.inflight) < 10:
            message = self.queue[0]
            pid = self.client.publish(message[0], message[1], 1, message[2])
            self.inflight.append((pid, self.queue.pop(0)))
            self.stats['published'] += 1
            if message[0].startswith(self.base + '/'):
                self.last_said = port.ticks_ms()

    def _try_connect(self):
        if port.ticks_diff(port.ticks_ms(), self.next_attempt) < 0 or not self.wifi_up():
            return
        # connect.py stays loaded while we are not connected (a retry reuses it) and goes once we are.
        __import__('mqttkit.connect', None, None, ('connect',)).session(self)
        if self.connected:
            drop('connect')

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

    def _guard(self, callback, *args):
        # A failing callback must not take the device off the network: record it for msg_exception.
        try:
            return callback(*args)
        except Exception as e:
            files.record_exception(e)
            self.status('exception', repr(e))
            return None

    def _load(self, name):
        # commands.py or ota.py, loaded now if it is not; step() drops it LINGER_MS after its last use.
        self.loaded[name] = port.ticks_ms()
        return __import__('mqttkit.' + name, None, None, (name,))

    def _lazy(self, name, text, entry='handle'):
        getattr(self._load(name), entry)(self, text)
        self.loaded[name] = port.ticks_ms()  # the linger counts from the end of the use (a transfer is long)

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
                # 1/0 as True/False for the boolean characteristics, else a number if it is one, else text
                value = text
                if ' %s ' % characteristic in BOOLS:
                    value = text in ('1', 'true', 'on', 'True')
                else:
                    for kind in (int, float):
                        try:
                            value = kind(text)
                            break
                        except ValueError:
                            pass
                result = self._guard(callback, value)
                confirmed = value if result is None else result
                self.applied[topic] = (text, confirmed)
            self.publish(service, characteristic, confirmed, index)
        elif topic == 'cmnd/%s/OTA' % self.id:
            # [O-12] '[#<n> ]<name>[ <argument>]': the name follows a request id (only routing needs it here)
            name = (text.split() + [''])[text[:1] == '#']
            if ' %s ' % name in OTA_COMMANDS and name not in self.commands:
                self._guard(self._lazy, 'ota', text, 'run_command')
            else:
                self._guard(self._lazy, 'commands', text)
        elif topic == '%s/OTA' % self.id:
            self._guard(self._lazy, 'ota', text)
        elif topic == 'cmnd/%s/OTA/pending' % self.id:
            # [O-7] The hub keeps this retained while an OTA job waits for this device: do not sleep yet.
            self.ota_pending = text.strip() == '1'


def run_app(main):
    # Runs the application. An uncaught exception is kept for msg_exception and the board reboots.
    try:
        main()
    except Exception as e:
        files.record_exception(e)
        files.record_reboot('uncaught exception: %r' % e)
        port.reset()
