# A small MQTT 3.1.1 client that behaves the same on MicroPython and CPython: publish QoS 0/1, ping,
# and a non-blocking receive with a bounded buffer (connect.py opens the session and subscribes). Reliability over features: every socket error surfaces as MQTTError and the caller reconnects.
# Packet types (first byte): CONNECT 0x10, CONNACK 0x20, PUBLISH 0x30, PUBACK 0x40, SUBSCRIBE 0x82,
# SUBACK 0x90, PINGREQ 0xC0, PINGRESP 0xD0, DISCONNECT 0xE0.
import select
import struct

MAX_PACKET = 4096  # a device never needs large messages; a bigger one is a broker error or an attack


class MQTTError(Exception):
    pass


def encode_length(n):
    out = bytearray()
    while True:
        out.append(n & 0x7F | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _string(s):
    if isinstance(s, str):
        s = s.encode('utf-8')
    return struct.pack('!H', len(s)) + s


def packet(kind, body):
    return bytes([kind]) + encode_length(len(body)) + body


def publish_packet(topic, message, qos=0, retain=False, pid=0):
    if isinstance(message, str):
        message = message.encode('utf-8')
    return packet(0x30 | (qos << 1) | (1 if retain else 0), _string(topic) + (struct.pack('!H', pid) if qos else b'') + message)


def parse(buffer):
    # Returns (packet type byte, body, consumed) for the first complete packet, or None.
    n = shift = 0
    i = 1
    while True:
        if i >= len(buffer):
            return None
        byte = buffer[i]
        n |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            break
        shift += 7
        if shift > 21:
            raise MQTTError('malformed packet length')
    if n > MAX_PACKET:
        raise MQTTError('packet of %d bytes is over the limit of %d' % (n, MAX_PACKET))
    if len(buffer) < i + n:
        return None
    return buffer[0], bytes(buffer[i:i + n]), i + n


class MQTTClient:
    # A connected session (connect.py opens it): publish, subscribe, ping, and receive what arrives.
    def __init__(self, sock):
        self.sock = sock
        self.poller = select.poll()
        self.poller.register(sock, select.POLLIN)
        self.buffer = bytearray()
        self.pid = 0
        self.on_message = lambda topic, payload, retained: None  # set by the user of the client
        self.unacked = {}  # pid -> True while a QoS 1 publish awaits PUBACK

    @staticmethod
    def write(sock, data):
        # Plain sockets have sendall on both interpreters; MicroPython's TLS sockets only write.
        (getattr(sock, 'sendall', None) or sock.write)(data)

    @staticmethod
    def read(sock, n):
        return (getattr(sock, 'recv', None) or sock.read)(n)

    def _send(self, data):
        if self.sock is None:
            raise MQTTError('not connected')
        try:
            self.write(self.sock, data)
        except OSError as e:
            self.close()
            raise MQTTError('connection lost while sending: %s' % e)

    def publish(self, topic, message, qos=0, retain=False):
        pid = 0
        if qos:
            self.pid = pid = self.pid % 65535 + 1
            self.unacked[pid] = True
        self._send(publish_packet(topic, message, qos, retain, pid))
        return pid

    def ping(self):
        self._send(b'\xc0\x00')

    def disconnect(self):
        try:
            self._send(b'\xe0\x00')
        except MQTTError:
            pass
        self.close()

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = self.poller = None

    def _fail(self, why):
        self.close()
        raise MQTTError(why)

    def check_msg(self, timeout_ms=0):
        # Reads what has arrived (waiting at most timeout_ms) and handles every complete packet.
        # Returns the number of packets handled; raises MQTTError when the connection is gone.
        if self.sock is None:
            raise MQTTError('not connected')
        handled = 0
        for _obj, flags in self.poller.poll(timeout_ms):
            if flags & (getattr(select, 'POLLHUP', 0) | getattr(select, 'POLLERR', 0)) and not flags & select.POLLIN:
                self._fail('connection lost')
            try:
                data = self.read(self.sock, 1024)
            except OSError as e:
                data = self._fail('connection lost: %s' % e)
            if not data:
                self._fail('connection closed by the broker')
            if len(self.buffer) + len(data) > MAX_PACKET + 8:
                self._fail('receive buffer overflow')
            self.buffer.extend(data)
        while True:
            parsed = parse(self.buffer)
            if parsed is None:
                return handled
            kind, body, used = parsed
            self.buffer = self.buffer[used:]
            handled += 1
            if kind & 0xF0 == 0x30:  # PUBLISH
                topic_end = 2 + struct.unpack('!H', body[0:2])[0]
                offset = topic_end
                if kind & 0x06:  # QoS 1: acknowledge
                    offset += 2
                    self._send(b'\x40\x02' + body[topic_end:offset])
                self.on_message(body[2:topic_end].decode('utf-8'), body[offset:], kind & 0x01)  # the retain flag
            elif kind & 0xF0 == 0x40:  # PUBACK
                self.unacked.pop(struct.unpack('!H', body[0:2])[0], None)
