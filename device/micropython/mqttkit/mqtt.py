# A small MQTT 3.1.1 client that behaves the same on MicroPython and CPython.
# Connect (with will), publish QoS 0/1, subscribe, ping, and a non-blocking receive with a bounded
# buffer. Reliability over features: every socket error surfaces as MQTTError and the caller reconnects.
# Packet types (first byte): CONNECT 0x10, CONNACK 0x20, PUBLISH 0x30, PUBACK 0x40, SUBSCRIBE 0x82,
# SUBACK 0x90, PINGREQ 0xC0, PINGRESP 0xD0, DISCONNECT 0xE0.
import select
import socket
import struct

MAX_PACKET = 4096  # a device never needs large messages; a bigger one is a broker error or an attack


class MQTTError(Exception):
    pass


class Refused(MQTTError):
    # The broker answered CONNACK with a non-zero code; retrying with the same credentials will not help.
    def __init__(self, code):
        why = ('unacceptable protocol version', 'identifier rejected', 'server unavailable', 'bad username or password', 'not authorized')
        MQTTError.__init__(self, 'connection refused: %s (%d)' % (why[code - 1] if 0 < code < 6 else 'unknown', code))
        self.code = code


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


def connect_packet(client_id, user=None, password=None, will=None, keepalive=30):
    flags = 0x02  # clean session
    payload = _string(client_id)
    if will:
        topic, message, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        payload += _string(topic) + _string(message)
    if user is not None:
        flags |= 0x80
        payload += _string(user)
    if password is not None:
        flags |= 0x40
        payload += _string(password)
    return packet(0x10, _string('MQTT') + struct.pack('!BBH', 4, flags, keepalive) + payload)


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
    def __init__(self, client_id, host, port=1883, user=None, password=None, keepalive=30, ssl=False, ssl_params=None):
        self.client_id = client_id
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self.ssl = ssl
        self.ssl_params = ssl_params or {}
        self.sock = self.poller = None
        self.buffer = bytearray()
        self.pid = 0
        self.on_message = lambda topic, payload, retained: None  # set by the user of the client
        self.unacked = {}  # pid -> True while a QoS 1 publish awaits PUBACK

    def connect(self, will=None, timeout=10, feed=None):
        # feed() runs before each blocking step (lookup, TCP, TLS, CONNACK): each waits at most `timeout`
        # seconds, so a watchdog of twice that period is never starved while connecting.
        feed = feed or (lambda: None)
        feed()
        address = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_STREAM)[0][-1]
        sock = socket.socket()
        sock.settimeout(timeout)
        try:
            feed()
            sock.connect(address)
            feed()
            if self.ssl:
                sock = self._tls(sock)
            feed()
            self._write(sock, connect_packet(self.client_id, self.user, self.password, will, self.keepalive))
            header = b''
            while len(header) < 4:
                feed()
                chunk = self._read(sock, 4 - len(header))
                if not chunk:
                    raise OSError('connection closed by the broker')
                header += chunk
        except OSError as e:
            sock.close()
            raise MQTTError('cannot connect to %s:%s: %s' % (self.host, self.port, e))
        if header[0] != 0x20 or header[1] != 2:
            sock.close()
            raise MQTTError('unexpected answer to CONNECT')
        if header[3]:
            sock.close()
            raise Refused(header[3])
        self.sock = sock
        self.buffer = bytearray()
        self.unacked = {}
        self.poller = select.poll()
        self.poller.register(sock, select.POLLIN)

    def _tls(self, sock):
        import ssl
        # SSLContext is what MicroPython 1.23+ and CPython share. Given a CA (`cafile` or `cadata`, e.g.
        # the hub's own certificate), the broker's certificate is verified; without one it is not
        # (as ssl.wrap_socket did on boards).
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        cafile = self.ssl_params.get('cafile')
        cadata = self.ssl_params.get('cadata')
        if cafile or cadata:
            context.load_verify_locations(cafile=cafile, cadata=cadata)
            context.verify_mode = ssl.CERT_REQUIRED
        else:
            setattr(context, 'check_hostname', False)  # CPython refuses CERT_NONE while it is on
            context.verify_mode = ssl.CERT_NONE
        return context.wrap_socket(sock, server_hostname=self.host)

    @staticmethod
    def _write(sock, data):
        # Plain sockets have sendall on both interpreters; MicroPython's TLS sockets only write.
        (getattr(sock, 'sendall', None) or sock.write)(data)

    @staticmethod
    def _read(sock, n):
        return (getattr(sock, 'recv', None) or sock.read)(n)

    def _send(self, data):
        if self.sock is None:
            raise MQTTError('not connected')
        try:
            self._write(self.sock, data)
        except OSError as e:
            self.close()
            raise MQTTError('connection lost while sending: %s' % e)

    def _next_pid(self):
        self.pid = self.pid % 65535 + 1
        return self.pid

    def publish(self, topic, message, qos=0, retain=False):
        pid = 0
        if qos:
            pid = self._next_pid()
            self.unacked[pid] = True
        self._send(publish_packet(topic, message, qos, retain, pid))
        return pid

    def subscribe(self, topic, qos=1):
        pid = self._next_pid()
        self._send(packet(0x82, struct.pack('!H', pid) + _string(topic) + bytes([qos])))
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
                data = self._read(self.sock, 1024)
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
