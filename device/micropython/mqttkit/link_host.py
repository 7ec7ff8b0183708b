# A board without Wi-Fi as a first-class mqttkit device: Host is the Device API (docs/device.md) over a
# serial link to a Bridge (link_bridge.py: an ESP8266/ESP32 with Wi-Fi and MQTT) wired to its UART.
# Loaded through mqttkit.link.Host (link.py), so that a bridge never compiles it. The
# wire is link_wire.py's (docs/protocol.md, "Serial link", [L-1]…[L-12]). The host's identity (device id,
# password) lives here only; the bridge is told it per broker session and forgets it [L-11].
import struct

from . import files, port
from . import link_wire as wire
from .device import Device, drop
from .mqtt import MQTTClient, MQTTError

# STATUS codes the bridge sends [L-10]
WIFI_UP, WIFI_DOWN, BROKER_OK, BROKER_LOST, BROKER_REFUSED = 1, 2, 3, 4, 5
# Commands that need the board's own network (OTA pulls files over HTTP): refused over the link.
NO_OTA = ('open', 'commit', 'discard', 'hashes', 'keepversion', 'partitions')


class LinkClient(MQTTClient):
    # Plays mqtt.MQTTClient for the Device (no socket: MQTTClient.__init__ is not called): publishes go
    # over the link; a QoS 1 one stays in `unacked` until the bridge says the broker has it (PUBOK) [L-10].
    def __init__(self, host):
        self.sock = None
        self.host = host
        self.pid = 0
        self.unacked = {}
        self.on_message = host._on_message

    def publish(self, topic, message, qos=0, retain=False):
        pid = 0
        if qos:
            self.pid = pid = self.pid % 65535 + 1
            self.unacked[pid] = True
        if isinstance(message, str):
            message = message.encode('utf-8')
        if not self.host.channel.send(wire.PUB, struct.pack('>HBB', pid, qos, 1 if retain else 0) + wire.string(topic) + message):
            self.unacked.pop(pid, None)
            raise MQTTError('serial link down or full')
        return pid

    def check_msg(self, timeout_ms=0):
        n = self.host.channel.poll(timeout_ms)
        self.host._raise_if_lost()
        return n

    def ping(self):
        pass  # the bridge keeps the broker connection alive; the link has its own heartbeat [L-7]

    def disconnect(self):
        # A clean leave (deep sleep): the bridge sends DISCONNECT, so the broker drops the last will.
        channel = self.host.channel
        if channel.send(wire.CLOSE):
            until = port.ticks_ms() + 1000
            while channel.sent and port.ticks_diff(until, port.ticks_ms()) > 0:
                channel.poll(20)

    def close(self):
        pass


class Host(Device):
    # The Device API (publish, on_set, command, every, log, set_meta, run, step, sleep) on a board whose
    # network is a Bridge on `uart` (machine.UART, or anything with any(), read(n), write(b)).
    # reset_bridge: a Pin or Signal on the bridge's reset line (active low), or None.
    channel: 'wire.Channel'
    bridge_wifi: bool
    lost_reason: object
    answer: object
    time_unix: int
    time_ticks: int
    link_was_up: bool
    bridge_heard: int
    reboot_at: int
    attempt: int

    def __init__(self, uart, config=None, status=None, name=None, model=None, manufacturer=None, firmware=None, reset_bridge=None):
        self.status = status or (lambda event, detail=None: None)
        __import__('mqttkit.identity', None, None, ('identity',)).setup(self, config, (('name', name), ('model', model), ('manufacturer', manufacturer), ('firmware', firmware)))
        drop('identity')
        c = self.config
        for key, value in (('link_timeout', 5), ('bridge_reset_after', 60)):
            c.setdefault(key, value)
        self.dog = None
        if c['watchdog_ms']:
            try:
                self.dog = port.watchdog(c['watchdog_ms'])
            except ImportError:  # neither ESP chip module: a board without Wi-Fi (chip_generic.py)
                from .chip_generic import watchdog
                self.dog = watchdog(c['watchdog_ms'])
        self.reset_bridge = reset_bridge
        self.bridge_wifi = False
        self.lost_reason = self.answer = None
        self.time_unix = self.time_ticks = 0
        self.link_was_up = False
        self.bridge_heard = port.ticks_ms()
        self.channel = wire.Channel(uart, wire.HOST, self._deliver, port, self._link_reset, timeout_ms=int(c['link_timeout'] * 1000))
        # Device.step reports 'wifi up'/'wifi down' from this: the bridge's Wi-Fi, seen over a live link
        self.wifi_up = lambda: self.channel.up and self.bridge_wifi
        self.commands['link'] = lambda device, argument: dict(device.channel.stats, up=device.channel.up, time=device.time())
        for name in NO_OTA:
            self.commands[name] = lambda device, argument: 'not available over the serial link: OTA needs the board\'s own network'
        self.reboot_at = 0
        self.attempt = 0
        self.commands['reboot'] = self._reboot  # ota.py's would load socket, which such a board lacks

    def time(self):
        # Seconds since 1970 (UTC) from the bridge's network time [L-10], or None before the first.
        if not self.time_unix:
            return None
        return self.time_unix + port.ticks_diff(port.ticks_ms(), self.time_ticks) // 1000

    def _reboot(self, _device, _argument):
        # Answered first; step() resets once the queue is out and acknowledged, or after 2 s.
        self.reboot_at = port.ticks_ms() + 2000
        return 'rebooting'

    def sleep(self, seconds):
        # As connect.sleep (Device.sleep), which this board cannot load (it imports socket): a moment for
        # pending commands, $state sleeping, the queue out (the link keeps its order, so it reaches the
        # broker before the DISCONNECT), then a clean leave and deep sleep. No OTA job can wait for it.
        self._settle(500)
        if self.connected:
            self._enqueue(self.base + '/$state', 'sleeping %d' % seconds, True)
            self._settle(2000, True)
            self.client.disconnect()
            self.connected = False
        self.running = False
        port.deep_sleep(int(seconds * 1000))

    def _settle(self, ms, until_sent=False):
        until = port.ticks_ms() + ms
        while self.connected and port.ticks_diff(until, port.ticks_ms()) > 0 and not (until_sent and not self.queue and not self.inflight):
            self.step(20)

    # --- the link -----------------------------------------------------------------------------------
    def _deliver(self, kind, body):
        if kind == wire.STATUS:
            code, detail = body[0], body[1:].decode('utf-8')
            if code in (WIFI_UP, WIFI_DOWN):
                self.bridge_wifi = code == WIFI_UP
            elif self.connected and code in (BROKER_LOST, BROKER_REFUSED):
                self.lost_reason = detail
        elif kind == wire.OPENED:
            # [L-10] the answer to our OPEN of this attempt (a late one, of an attempt we gave up, is not)
            if body[0] == self.attempt:
                self.answer = (body[1], body[2:].decode('utf-8'))
        elif kind == wire.PUBOK:
            if self.client:
                self.client.unacked.pop(struct.unpack('>H', body[:2])[0], None)
        elif kind == wire.MSG:
            (topic,), payload = wire.strings(body[1:], 1)
            self._on_message(topic.decode('utf-8'), payload, body[0] == 1)
        elif kind == wire.TIME:
            self.time_unix, self.time_ticks = struct.unpack('>I', body[:4])[0], port.ticks_ms()
            self.status('time', self.time_unix)

    def _link_reset(self, why):
        # [L-8] the session with the bridge ended (it restarted, or the wire fell silent): the broker
        # session went with it; the Device requeues what was not acknowledged and connects again.
        self.bridge_wifi = False
        if self.connected:
            self.lost_reason = 'serial link: ' + why

    def _raise_if_lost(self):
        why = self.lost_reason
        if why:
            self.lost_reason = None
            raise MQTTError(str(why))

    def step(self, wait_ms=0):
        if not self.connected:
            self.channel.poll(wait_ms)  # Device.step would only sleep: the link needs reading
            wait_ms = 0
        up = self.channel.up
        now = port.ticks_ms()
        if up != self.link_was_up:
            self.link_was_up = up
            self.status('link up' if up else 'link down')
        if up:
            self.bridge_heard = now
        elif self.reset_bridge is not None and port.ticks_diff(now, self.bridge_heard) > self.config['bridge_reset_after'] * 1000:
            # [L-12] the bridge is silent too long: pull its reset line
            self.bridge_heard = now
            self.status('bridge reset')
            self.reset_bridge.value(0)
            port.sleep_ms(50)
            self.reset_bridge.value(1)
        Device.step(self, wait_ms)
        if self.reboot_at and (port.ticks_diff(port.ticks_ms(), self.reboot_at) >= 0 or not (self.queue or self.inflight)):
            files.record_reboot('reboot command')
            port.reset()

    def _try_connect(self):
        # One broker session through the bridge [L-10][L-11]: OPEN with our credentials and last will,
        # SUB, then the bridge's answer; on success as connect.session: metadata and state first.
        if port.ticks_diff(port.ticks_ms(), self.next_attempt) < 0 or not self.wifi_up():
            return
        c = self.config
        base = self.base
        self.answer = self.lost_reason = None
        self.attempt = self.attempt % 255 + 1
        topics = (base + '/+/+/set', base + '/+/+/+/set', 'cmnd/%s/OTA' % self.id, 'cmnd/%s/OTA/pending' % self.id)
        # [P-1] the last will: $state offline, QoS 1, retained
        opened = self.channel.send(wire.OPEN, wire.string(self.id) + wire.string(self.id) + wire.string(self.password) + wire.string(base + '/$state') + wire.string('offline') + struct.pack('>BBHB', 1, 1, c['keepalive'], self.attempt))
        if opened:
            opened = self.channel.send(wire.SUB, b''.join(wire.string(t) for t in topics))
        until = port.ticks_ms() + (self.step_s + 2) * 1000
        while opened and self.answer is None and self.channel.up and port.ticks_diff(until, port.ticks_ms()) > 0:
            self._feed()
            self.channel.poll(50)
        code, detail = self.answer or (BROKER_LOST, 'no answer from the bridge')
        if code != BROKER_OK:
            self._retry_later()
            self.status('broker refused' if code == BROKER_REFUSED else 'broker lost', detail)
            return
        self.client = LinkClient(self)
        self.connected = True
        self.inflight = []
        self.backoff = c['backoff_min']
        self.last_contact = self.last_ping = port.ticks_ms()
        head = [('%s/$%s' % (base, f), str(v), True) for f, v in self.meta.items()]
        head.append((base + '/$state', 'online', True))
        if c['keepalive'] > 0:
            head.append((base + '/$keepalive', '%d' % c['keepalive'], False))  # [P-20]
        self.queue = head + self.queue
        try:
            self._flush()
        except MQTTError as e:
            self._lost(str(e))
            return
        self.status('broker ok', detail)

    def _flush(self):
        # As Device._flush, but a message leaves the queue only once the link took it: a link that went
        # down (or filled up) under us keeps it queued for the next session, not lost with the failed send.
        if self.inflight:
            self.inflight = [(pid, m) for pid, m in self.inflight if pid in self.client.unacked]
        channel = self.channel
        while self.queue and self.connected and channel.up and len(self.inflight) < 10 and len(channel.sent) + len(channel.queue) < channel.limit - 2:
            message = self.queue[0]
            pid = self.client.publish(message[0], message[1], 1, message[2])
            self.queue.pop(0)
            self.inflight.append((pid, message))
            self.stats['published'] += 1
            if message[0].startswith(self.base + '/'):
                self.last_said = port.ticks_ms()
