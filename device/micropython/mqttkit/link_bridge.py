# The Bridge: an ESP8266/ESP32 with Wi-Fi wired to a Host's UART (link.py). It holds the network (Wi-Fi,
# the broker's address, network time) and none of the host's identity: the host sends its device id,
# password and last will in OPEN for each broker session, and the bridge uses them for that one CONNECT
# and keeps no copy [L-11]. It watches the host and resets it (a GPIO on its reset line), and then itself,
# when the host stays silent [L-12]. It fetches the host's OTA files from the hub's server and hands the
# bytes over as they come, holding no file [L-13]…[L-16]. docs/protocol.md, "Serial link"; docs/device.md,
# "Boards without Wi-Fi".
import errno
import json
import socket
import struct
import sys

from . import files, port
from . import link_wire as wire
from .mqtt import MQTTError, _string, packet

WIFI_UP, WIFI_DOWN, BROKER_OK, BROKER_LOST, BROKER_REFUSED, ADDRESS = 1, 2, 3, 4, 5, 6
NTP_1970 = 2208988800  # seconds from 1900 (NTP's era) to 1970


NTP_WAIT_MS = 2000  # how long an SNTP answer may take


def time_query(address):
    # One SNTP query (RFC 4330), sent without waiting: the answer is read by time_answer from step(), so
    # a slow or silent server never holds the loop (and the link's heartbeat) up [L-18].
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.sendto(b'\x1b' + bytes(47), address)
    except OSError:
        sock.close()
        raise
    return sock


def time_answer(sock):
    # Seconds since 1970 from the server's transmit timestamp; None while no answer is in.
    try:
        answer = sock.recv(48)
    except OSError as e:
        if e.args and e.args[0] in (errno.EAGAIN, errno.ETIMEDOUT):
            return None
        raise
    if answer is None:
        return None
    if len(answer) < 48:
        raise OSError('short NTP answer')
    return struct.unpack('>I', answer[40:44])[0] - NTP_1970


class Bridge:
    transfer: list
    ntp: list
    def __init__(self, uart, config=None, status=None, reset_host=None):
        self.status = status or (lambda event, detail=None: None)
        c = {'broker': '127.0.0.1', 'port': 1883, 'ssl': False, 'link_timeout': 5, 'host_reset_after': 30, 'resets_before_self': 3,
             'watchdog_ms': 0, 'ntp_host': 'pool.ntp.org', 'ntp_port': 123, 'ntp_interval': 3600, 'connect_timeout': 3,
             'ota_hosts': [], 'ota_idle': 20}
        stored = files.read_file('config.json')
        if stored:
            c.update(json.loads(stored))
        if config:
            c.update(config)
        self.config = c
        self.reset_host = reset_host
        self.wifi_up = port.wifi_connect(c.get('wifi_ssid'), c.get('wifi_password'))
        self.wifi_was_up = None
        self.dog = port.watchdog(c['watchdog_ms']) if c['watchdog_ms'] else None
        self.client = None
        self.pending = {}  # our MQTT pid -> the host's pid, for QoS 1 publishes the broker has not acknowledged
        self.keepalive = 0
        self.last_contact = self.last_ping = self.host_heard = port.ticks_ms()
        self.host_resets = 0
        self.time_at = None
        self.ntp = []  # the SNTP query in flight: [socket, sent at]
        self.ntp_address = None  # the server's address, looked up once (a lookup blocks) [L-18]
        self.stats = {'forwarded': 0, 'published': 0, 'dropped': 0, 'too_big': 0, 'host_resets': 0, 'fetches': 0, 'fetch_refused': 0, 'fetch_bytes': 0}
        self.transfer = []  # the one pull running [L-14]: [id, socket, bytes read, window, chunk, last data]
        self.channel = wire.Channel(uart, wire.BRIDGE, self._deliver, port, self._link_reset, timeout_ms=int(c['link_timeout'] * 1000))
        self.link_was_up = False

    def run(self):
        while True:
            self.step(20)

    def _say(self, code, detail=''):
        self.channel.send(wire.STATUS, bytes([code]) + detail[:200].encode('utf-8'))  # [L-3] within a body

    def step(self, wait_ms=0):
        if self.dog:
            self.dog.feed()
        self.channel.poll(wait_ms)
        now = port.ticks_ms()
        up = self.channel.up
        wifi = bool(self.wifi_up())
        if up != self.link_was_up:
            self.link_was_up = up
            self.status('link up' if up else 'link down')
            if up:
                self.wifi_was_up = None  # tell the new session where Wi-Fi stands
        if wifi != self.wifi_was_up and (up or not wifi):
            self.wifi_was_up = wifi
            self.status('wifi up' if wifi else 'wifi down')
            self._say(WIFI_UP if wifi else WIFI_DOWN)
        if self.client:
            self._broker(now)
        if self.transfer:
            self._pulls().pull(self, now)
        if self.ntp:
            self._time(now)
        if up:
            self.host_heard = now
            self.host_resets = 0
            if wifi and self.config['ntp_host'] and not self.ntp and (self.time_at is None or port.ticks_diff(now, self.time_at) > self.config['ntp_interval'] * 1000):
                self.time_at = now
                try:
                    if self.ntp_address is None:
                        # [L-18] the one step that may block (a DNS lookup; none for an address): once,
                        # then kept; a heartbeat just before gives the host the whole link timeout
                        self.channel.beat()
                        self.ntp_address = socket.getaddrinfo(self.config['ntp_host'], self.config['ntp_port'], 0, socket.SOCK_DGRAM)[0][-1]
                    self.ntp = [time_query(self.ntp_address), now]
                except (OSError, IndexError) as e:
                    self.status('time failed', str(e))
        elif port.ticks_diff(now, self.host_heard) > self.config['host_reset_after'] * 1000:
            # [L-12] the host is silent: reset it; after resets_before_self in a row, reset ourselves
            self.host_heard = now
            if self.host_resets >= self.config['resets_before_self']:
                files.record_reboot('host silent after %d resets' % self.host_resets)
                port.reset()
            self.host_resets += 1
            self.stats['host_resets'] += 1
            self.status('host reset', self.host_resets)
            if self.reset_host is not None:
                self.reset_host.value(0)
                port.sleep_ms(50)
                self.reset_host.value(1)

    def _time(self, now):
        # The SNTP query's answer, if it is in; a failed or silent one is given up (the address is looked
        # up again next time: the server may have moved) [L-18].
        sock, sent = self.ntp
        try:
            seconds = time_answer(sock)
            if seconds is None:
                if port.ticks_diff(now, sent) < NTP_WAIT_MS:
                    return
                raise OSError('no answer from %s in %d ms' % (self.config['ntp_host'], NTP_WAIT_MS))
            self.channel.send(wire.TIME, struct.pack('>I', seconds))
        except OSError as e:
            self.ntp_address = None
            self.status('time failed', str(e))
        self.ntp = []
        sock.close()

    def _broker(self, now):
        client = self.client
        try:
            if client.check_msg(0):
                self.last_contact = now
            for pid in [p for p in self.pending if p not in client.unacked]:
                # [L-10] the host's packet id, once the broker has it; forgotten only once the link took
                # the PUBOK (else the host's QoS 1 message would wait for it for ever): tried again next step
                if not self.channel.send(wire.PUBOK, struct.pack('>H', self.pending[pid])):
                    break
                del self.pending[pid]
            if self.keepalive:
                if port.ticks_diff(now, self.last_ping) > self.keepalive * 500:
                    client.ping()
                    self.last_ping = now
                if port.ticks_diff(now, self.last_contact) > self.keepalive * 2000:
                    raise MQTTError('no answer from the broker for %d s' % (self.keepalive * 2))
        except MQTTError as e:
            self._drop_broker()
            self.status('broker lost', str(e))
            self._say(BROKER_LOST, str(e))

    def _drop_broker(self, clean=False):
        # clean: DISCONNECT (the broker drops the last will); otherwise the socket just closes and the
        # broker publishes the will: the host is gone from the network.
        if self.client:
            if clean:
                self.client.disconnect()
            else:
                self.client.close()
        self.client = None
        self.pending = {}

    def _link_reset(self, why):
        # [L-8] the host restarted or the wire is silent: its broker session ends with the link (the will
        # tells the hub); a new session opens when the host asks again. A pull ends too [L-16]: the hub
        # sees its connection close early, as when a Wi-Fi device drops.
        self._drop_broker()
        if self.transfer:
            self._pulls().end(self)
        # A host that restarted quickly has a new session before step() saw the link go: tell it where
        # Wi-Fi stands all the same (without it, it never asks for a broker session).
        self.link_was_up = False
        self.wifi_was_up = None
        self.status('link reset', why)

    def _deliver(self, kind, body):
        if kind == wire.OPEN:
            self._open(body)
        elif kind == wire.SUB:
            topics = self._topics(body)
            if self.client:
                try:
                    for topic in topics:
                        self.client.pid += 1
                        self.client._send(packet(0x82, struct.pack('!H', self.client.pid) + _string(topic) + b'\x01'))
                except MQTTError as e:
                    self._drop_broker()
                    self._say(BROKER_LOST, str(e))
        elif kind == wire.PUB:
            pid, qos, retain = struct.unpack('>HBB', body[:4])
            (topic,), payload = wire.strings(body[4:], 1)
            if qos > 1:
                raise ValueError('PUB with QoS %d' % qos)  # [L-17] counted and dropped by the channel
            if not self.client:
                self._say(BROKER_LOST, 'not connected to the broker')
                return
            try:
                mine = self.client.publish(topic.decode('utf-8'), payload, qos, retain == 1)
                self.stats['published'] += 1
                if qos:
                    self.pending[mine] = pid
            except MQTTError as e:
                self._drop_broker()
                self._say(BROKER_LOST, str(e))
        elif kind == wire.CLOSE:
            self._drop_broker(True)
        elif kind == wire.FETCH:
            pulls = self._pulls()
            try:
                pulls.fetch(self, body)
            finally:
                if not self.transfer:
                    pulls._drop()  # a FETCH too malformed to answer [L-17]: the module goes all the same
        elif kind == wire.STOP:
            if self.transfer and self.transfer[0] == body[0]:
                self._pulls().end(self)

    @staticmethod
    def _topics(body):
        out = []
        while body:
            (topic,), body = wire.strings(body, 1)
            out.append(topic.decode('utf-8'))
        return out

    def _open(self, body):
        # [L-11] the host's credentials live in this call's locals only: used for one CONNECT, not kept.
        (client_id, user, password, will_topic, will_message), rest = wire.strings(body, 5)
        will_qos, will_retain, keepalive, attempt = struct.unpack('>BBHB', rest[:5])
        if will_qos > 1:
            raise ValueError('OPEN with a will of QoS %d' % will_qos)  # [L-17]
        self._drop_broker()
        c = self.config
        try:
            connect = __import__('mqttkit.connect', None, None, ('connect',))
            self.client = connect.open_client(client_id.decode('utf-8'), c['broker'], c['port'], user.decode('utf-8'), password.decode('utf-8'), keepalive,
                                              c['ssl'], c.get('ssl_params'), (will_topic.decode('utf-8'), will_message.decode('utf-8'), will_qos, will_retain == 1),
                                              c['connect_timeout'], self._beat)
        except (MQTTError, OSError) as e:
            refused = getattr(e, 'code', None) is not None
            self.status('broker refused' if refused else 'broker lost', str(e))
            self._answer(attempt, BROKER_REFUSED if refused else BROKER_LOST, str(e))
            return
        finally:
            password = body = None  # noqa: F841 (dropped at once, not when the frame is collected)
        self.client.on_message = self._forward
        self.keepalive = keepalive
        self.last_contact = self.last_ping = port.ticks_ms()
        self.status('broker ok', client_id.decode('utf-8'))
        self._answer(attempt, BROKER_OK, '%s:%s' % (c['broker'], c['port']))
        try:
            # [L-16] our own address: where the hub sees the host's OTA pulls come from ([O-4] `open`).
            # board.py (and its chip module) go again at once: a bridge's heap is small.
            board = __import__('mqttkit.board', None, None, ('board',))
            self._say(ADDRESS, board.local_address(self.client.sock) or '')
        except (ImportError, OSError, AttributeError) as e:
            self.status('no address', repr(e))
        package = sys.modules.get('mqttkit')
        for name in ('board', 'chip_esp32', 'chip_esp8266'):
            sys.modules.pop('mqttkit.' + name, None)
            if hasattr(package, name):
                delattr(package, name)

    def _answer(self, attempt, code, detail):
        # [L-10] OPENED names the host's attempt, so a late answer is never taken for a newer one's
        self.channel.send(wire.OPENED, bytes([attempt, code]) + detail[:200].encode('utf-8'))

    def _beat(self):
        # Between the blocking steps of a CONNECT: feed the watchdog and keep the host's heartbeat going
        # (nothing is read: frames wait in the UART for the loop).
        if self.dog:
            self.dog.feed()
        self.channel.beat()

    def _forward(self, topic, payload, retained):
        # A message from the broker for the host: reliable over the link [L-9]; a full link drops it
        # (counted), as does one too big for a frame (the broker takes larger ones than the link) [L-17].
        body = bytes([1 if retained else 0]) + wire.string(topic) + payload
        if len(body) > wire.MAX_BODY:
            self.stats['too_big'] += 1
            self.status('message too big', '%s: %d bytes' % (topic[:60], len(payload)))
            return
        if self.channel.send(wire.MSG, body):
            self.stats['forwarded'] += 1
        else:
            self.stats['dropped'] += 1

    # --- OTA pulls for the host [L-13]…[L-16]: link_pull.py, loaded for a FETCH and dropped after ---------
    def _pulls(self):
        return __import__('mqttkit.link_pull', None, None, ('link_pull',))
