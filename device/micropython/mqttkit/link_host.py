# A board without Wi-Fi as a first-class mqttkit device: Host is the Device API (docs/device.md) over a
# serial link to a Bridge (link_bridge.py: an ESP8266/ESP32 with Wi-Fi and MQTT) wired to its UART.
# Loaded through mqttkit.link.Host (link.py), so that a bridge never compiles it. The
# wire is link_wire.py's (docs/protocol.md, "Serial link", [L-1]…[L-18]). The host's identity (device id,
# password) lives here only; the bridge is told it per broker session and forgets it [L-11]. OTA files
# come through the bridge (LinkSource, [L-13]…[L-16]); ota.py stages, checks and commits them as for
# any device.
import errno
import os
import struct

from . import files, port
from . import link_wire as wire
from .device import Device, drop
from .mqtt import MQTTClient, MQTTError

# STATUS codes the bridge sends [L-10]; ADDRESS: the bridge's own address, for `open` [L-16]
WIFI_UP, WIFI_DOWN, BROKER_OK, BROKER_LOST, BROKER_REFUSED, ADDRESS = 1, 2, 3, 4, 5, 6
DEFERRED = 8  # broker messages held while a transfer runs (more are dropped and counted) [L-14]


class LinkSource:
    # [L-13] An OTA pull through the bridge, a byte source for ota.receive (open() -> readinto, close,
    # limit): FETCH asks the bridge to read the hub's server; its DATA frames come in order over the
    # link (CRC, retransmission), at most `window` unacknowledged, and wait here until ota.receive
    # takes them into its buffer (so at most window x chunk bytes of the file are in memory); FETCHED
    # ends the pull. A link reset, a frame out of order or past the window breaks the transfer [L-14].
    end: tuple  # FETCHED: (code, total, detail); () while the pull goes on
    broken: object  # why the transfer broke (a text), or None
    limit: int

    def __init__(self, host, address, port_number, chunk):
        c = host.config
        self.host = host
        host.fetch_id = self.id = host.fetch_id % 255 + 1
        self.request = struct.pack('>BHBH', self.id, port_number, c['ota_window'], chunk) + wire.string(address)
        self.chunks = []  # DATA bodies not yet read, the first read up to `skip`
        self.skip = 5
        self.received = 0
        self.end = ()
        self.broken = None
        try:
            # [L-14] the room the filesystem has, less a reserve for the device's own files
            v = os.statvfs(files.path('') if files.ROOT else '/')
            self.limit = max(1, v[1] * v[4] - c['ota_reserve'])
        except (AttributeError, OSError):
            self.limit = 0

    def open(self):
        host = self.host
        host.transfer = self
        if not host.channel.send(wire.FETCH, self.request):
            raise OSError('serial link down or full')
        return self.readinto

    def data(self, body):
        # A DATA frame of this pull: in order and within the window, or the transfer is broken [L-14]
        if struct.unpack('>I', body[1:5])[0] != self.received:
            self.broken = 'the bridge sent bytes out of order'
        elif len(body) == 5:
            pass  # no bytes: nothing to read (kept, readinto would take it for the end of the file)
        elif len(self.chunks) >= self.host.config['ota_window']:
            self.broken = 'the bridge sent more than the window'
        else:
            self.chunks.append(body)
            self.received += len(body) - 5

    def readinto(self, buffer):
        # As a socket's: bytes into buffer, 0 at the end, OSError(ETIMEDOUT) after a second without any.
        channel = self.host.channel
        until = port.ticks_ms() + 1000
        while not self.chunks:
            if self.broken:
                raise OSError(self.broken)
            if self.end:
                code, total, detail = self.end
                if code:
                    raise OSError('bridge: ' + detail)
                if total != self.received:
                    raise OSError('the bridge read %d bytes, %d came over the link' % (total, self.received))
                return 0
            if port.ticks_diff(until, port.ticks_ms()) <= 0:
                raise OSError(errno.ETIMEDOUT)
            channel.poll(50)
        chunk = self.chunks[0]
        n = min(len(buffer), len(chunk) - self.skip)
        memoryview(buffer)[:n] = memoryview(chunk)[self.skip:self.skip + n]
        self.skip += n
        if self.skip == len(chunk):
            self.chunks.pop(0)
            self.skip = 5
        return n

    def close(self):
        # The bridge closes its connection when the pull ended; otherwise (the host gave up: a size
        # bound, a write error, a broken link) STOP tells it to; a STOP of an older pull is ignored [L-13].
        host = self.host
        host.transfer = None
        if not self.end:
            host.channel.send(wire.STOP, bytes([self.id]))
        self.chunks = []


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
        body = struct.pack('>HBB', pid, qos, 1 if retain else 0) + wire.string(topic) + message
        if len(body) > wire.MAX_BODY:
            # [L-3] more than a frame holds: dropped and counted (kept, it would block the queue for ever)
            self.unacked.pop(pid, None)
            stats = self.host.stats
            stats['too_big'] = stats.get('too_big', 0) + 1
            return pid
        if not self.host.channel.send(wire.PUB, body):
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
    transfer: object
    deferred: list
    fetch_id: int
    bridge_address: object

    def __init__(self, uart, config=None, status=None, name=None, model=None, manufacturer=None, firmware=None, reset_bridge=None):
        self.status = status or (lambda event, detail=None: None)
        __import__('mqttkit.identity', None, None, ('identity',)).setup(self, config, (('name', name), ('model', model), ('manufacturer', manufacturer), ('firmware', firmware)))
        drop('identity')
        c = self.config
        for key, value in (('link_timeout', 5), ('bridge_reset_after', 60), ('ota_window', 3), ('ota_reserve', 8192)):
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
        self.commands['link'] = lambda device, argument: dict(device.channel.stats, up=device.channel.up, time=device.time(), last_bad=device.channel.last_bad)
        self.transfer = self.bridge_address = None
        self.deferred = []
        self.fetch_id = 0
        self.reboot_at = 0
        self.attempt = 0
        self.commands['reboot'] = self._reboot  # ota.py's would load socket, which such a board lacks

    def ota_source(self, address, port_number):
        # ota.handle's byte source: the hub's server, read by the bridge [L-13]
        from .ota import CHUNK
        return LinkSource(self, address, port_number, CHUNK)

    def local_address(self):
        # [O-4] the address the hub sees the files fetched from: the bridge's [L-16]
        return self.bridge_address

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
        # broker before the DISCONNECT), then a clean leave and deep sleep. [O-7] It stays awake while the
        # hub has an OTA job for it (up to pending_wait seconds): its files come through the bridge [L-13].
        self._settle(500)
        until = port.ticks_ms() + self.config.get('pending_wait', 120) * 1000
        while self.connected and self.ota_pending and port.ticks_diff(until, port.ticks_ms()) > 0:
            self.step(50)
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
            elif code == ADDRESS:
                self.bridge_address = detail
        elif kind == wire.OPENED:
            # [L-10] the answer to our OPEN of this attempt (a late one, of an attempt we gave up, is not)
            if body[0] == self.attempt:
                self.answer = (body[1], body[2:].decode('utf-8'))
        elif kind == wire.PUBOK:
            pid = struct.unpack('>H', body[:2])[0]
            if self.client:
                self.client.unacked.pop(pid, None)
        elif kind == wire.MSG:
            (topic,), payload = wire.strings(body[1:], 1)
            if self.transfer is None:
                self._on_message(topic.decode('utf-8'), payload, body[0] == 1)
            elif len(self.deferred) < DEFERRED:
                # [L-14] not inside a transfer (a trigger or command would nest in it): after it, in order
                self.deferred.append((topic.decode('utf-8'), payload, body[0] == 1))
            else:
                self.stats['held_dropped'] = self.stats.get('held_dropped', 0) + 1
        elif kind == wire.DATA or kind == wire.FETCHED:
            t = self.transfer
            if not isinstance(t, LinkSource) or body[0] != t.id:
                return  # of a pull this host gave up: the bridge stops it (STOP, or the link reset)
            if kind == wire.DATA:
                t.data(body)
            else:
                t.end = (body[1], struct.unpack('>I', body[2:6])[0], body[6:].decode('utf-8'))
        elif kind == wire.TIME:
            self.time_unix, self.time_ticks = struct.unpack('>I', body[:4])[0], port.ticks_ms()
            self.status('time', self.time_unix)

    def _link_reset(self, why):
        # [L-8] the session with the bridge ended (it restarted, or the wire fell silent): the broker
        # session went with it; the Device requeues what was not acknowledged and connects again.
        self.bridge_wifi = False
        if self.connected:
            self.lost_reason = 'serial link: ' + why
        if isinstance(self.transfer, LinkSource):
            self.transfer.broken = 'serial link: ' + why  # [L-16] the bridge dropped the pull too

    def _raise_if_lost(self):
        why = self.lost_reason
        if why:
            self.lost_reason = None
            raise MQTTError(str(why))

    def step(self, wait_ms=0):
        while self.deferred and self.transfer is None:
            self._on_message(*self.deferred.pop(0))
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
        topics = (base + '/+/+/set', base + '/+/+/+/set', 'cmnd/%s/OTA' % self.id, 'cmnd/%s/OTA/pending' % self.id, '%s/OTA' % self.id)
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
        while self.queue and self.connected and channel.up and len(self.inflight) < 10 and len(channel.sent) + len(channel.queue) < channel.limit - wire.RESERVE:
            message = self.queue[0]
            pid = self.client.publish(message[0], message[1], 1, message[2])
            self.queue.pop(0)
            self.inflight.append((pid, message))
            self.stats['published'] += 1
            if message[0].startswith(self.base + '/'):
                self.last_said = port.ticks_ms()
