# A small MQTT 3.1.1 client that behaves the same on MicroPython and CPython.
# Connect (with will), publish QoS 0/1, subscribe, ping, and a non-blocking receive with a bounded
# buffer. Reliability over features: every socket error surfaces as MQTTError and the caller reconnects.
import struct

try:
    import usocket as socket
except ImportError:
    import socket
try:
    import uselect as select
except ImportError:
    import select

CONNECT = 0x10
CONNACK = 0x20
PUBLISH = 0x30
PUBACK = 0x40
SUBSCRIBE = 0x82
SUBACK = 0x90
PINGREQ = 0xC0
PINGRESP = 0xD0
DISCONNECT = 0xE0

# A device never needs large messages; a bigger one is a broker error or an attack.
MAX_PACKET = 4096

CONNACK_REASONS = {
    1: 'unacceptable protocol version',
    2: 'identifier rejected',
    3: 'server unavailable',
    4: 'bad username or password',
    5: 'not authorized',
}


class MQTTError(Exception):
    pass


class Refused(MQTTError):
    # The broker answered CONNACK with a non-zero code; retrying with the same credentials will not help.
    def __init__(self, code):
        MQTTError.__init__(self, 'connection refused: %s (%d)' % (CONNACK_REASONS.get(code, 'unknown'), code))
        self.code = code


def encode_length(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            byte |= 0x80
        out.append(byte)
        if not n:
            return bytes(out)


def encode_string(s):
    if isinstance(s, str):
        s = s.encode('utf-8')
    return struct.pack('!H', len(s)) + s


def packet(kind, body):
    return bytes([kind]) + encode_length(len(body)) + body


def connect_packet(client_id, user=None, password=None, will=None, keepalive=30, clean=True):
    flags = 0x02 if clean else 0
    payload = encode_string(client_id)
    if will:
        topic, message, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        payload += encode_string(topic) + encode_string(message)
    if user is not None:
        flags |= 0x80
        payload += encode_string(user)
    if password is not None:
        flags |= 0x40
        payload += encode_string(password)
    header = encode_string('MQTT') + bytes([4, flags]) + struct.pack('!H', keepalive)
    return packet(CONNECT, header + payload)


def publish_packet(topic, message, qos=0, retain=False, pid=0):
    if isinstance(message, str):
        message = message.encode('utf-8')
    body = encode_string(topic)
    if qos:
        body += struct.pack('!H', pid)
    return packet(PUBLISH | (qos << 1) | (1 if retain else 0), body + message)


def subscribe_packet(topic, qos, pid):
    return packet(SUBSCRIBE, struct.pack('!H', pid) + encode_string(topic) + bytes([qos]))


def parse(buffer):
    # Returns (packet type byte, body, consumed) for the first complete packet, or None.
    if len(buffer) < 2:
        return None
    n = 0
    shift = 0
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


def send_all(sock, data):
    # Plain sockets have sendall on both interpreters; MicroPython's TLS sockets only write.
    write = getattr(sock, 'sendall', None) or sock.write
    write(data)


def receive(sock, n):
    read = getattr(sock, 'recv', None) or sock.read
    return read(n)


def _ignore(topic, payload, retained):
    pass


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
        self.sock = None
        self.poller = None
        self.buffer = bytearray()
        self.pid = 0
        self.on_message = _ignore  # (topic, payload, retained): set by the user of the client
        self.unacked = {}  # pid -> True while a QoS 1 publish awaits PUBACK
        self.granted = {}  # pid -> SUBACK code

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
                try:
                    import ussl as ssl
                except ImportError:
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
                sock = context.wrap_socket(sock, server_hostname=self.host)
            feed()
            send_all(sock, connect_packet(self.client_id, self.user, self.password, will, self.keepalive))
            header = self._read_exactly(sock, 4, feed)
        except OSError as e:
            sock.close()
            raise MQTTError('cannot connect to %s:%s: %s' % (self.host, self.port, e))
        if header[0] != CONNACK or header[1] != 2:
            sock.close()
            raise MQTTError('unexpected answer to CONNECT')
        if header[3] != 0:
            sock.close()
            raise Refused(header[3])
        self.sock = sock
        self.buffer = bytearray()
        self.unacked = {}
        self.poller = select.poll()
        self.poller.register(sock, select.POLLIN)

    def _read_exactly(self, sock, n, feed):
        data = b''
        while len(data) < n:
            feed()
            chunk = receive(sock, n - len(data))
            if not chunk:
                raise OSError('connection closed by the broker')
            data += chunk
        return data

    def _send(self, data):
        if self.sock is None:
            raise MQTTError('not connected')
        try:
            send_all(self.sock, data)
        except OSError as e:
            self.close()
            raise MQTTError('connection lost while sending: %s' % e)

    def _next_pid(self):
        self.pid = self.pid % 65535 + 1
        return self.pid

    def publish(self, topic, message, qos=0, retain=False):
        pid = self._next_pid() if qos else 0
        if qos:
            self.unacked[pid] = True
        self._send(publish_packet(topic, message, qos, retain, pid))
        return pid

    def subscribe(self, topic, qos=1):
        pid = self._next_pid()
        self._send(subscribe_packet(topic, qos, pid))
        return pid

    def ping(self):
        self._send(packet(PINGREQ, b''))

    def disconnect(self):
        if self.sock is not None:
            try:
                self._send(packet(DISCONNECT, b''))
            except MQTTError:
                pass
        self.close()

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.poller = None

    def check_msg(self, timeout_ms=0):
        # Reads what has arrived (waiting at most timeout_ms) and handles every complete packet.
        # Returns the number of packets handled; raises MQTTError when the connection is gone.
        if self.sock is None:
            raise MQTTError('not connected')
        handled = 0
        events = self.poller.poll(timeout_ms)
        for _obj, flags in events:
            if flags & (getattr(select, 'POLLHUP', 0) | getattr(select, 'POLLERR', 0)) and not flags & select.POLLIN:
                self.close()
                raise MQTTError('connection lost')
            try:
                data = receive(self.sock, 1024)
            except OSError as e:
                self.close()
                raise MQTTError('connection lost: %s' % e)
            if not data:
                self.close()
                raise MQTTError('connection closed by the broker')
            if len(self.buffer) + len(data) > MAX_PACKET + 8:
                self.close()
                raise MQTTError('receive buffer overflow')
            self.buffer.extend(data)
        while True:
            parsed = parse(self.buffer)
            if parsed is None:
                break
            kind, body, used = parsed
            self.buffer = self.buffer[used:]
            self._handle(kind, body)
            handled += 1
        return handled

    def _handle(self, kind, body):
        kind_type = kind & 0xF0
        if kind_type == PUBLISH:
            qos = (kind >> 1) & 0x03
            topic_len = struct.unpack('!H', body[0:2])[0]
            topic = body[2:2 + topic_len].decode('utf-8')
            offset = 2 + topic_len
            if qos:
                pid = struct.unpack('!H', body[offset:offset + 2])[0]
                offset += 2
                self._send(packet(PUBACK, struct.pack('!H', pid)))
            self.on_message(topic, body[offset:], kind & 0x01)  # the retain flag: kept by the broker
        elif kind_type == PUBACK:
            self.unacked.pop(struct.unpack('!H', body[0:2])[0], None)
        elif kind_type == SUBACK:
            self.granted[struct.unpack('!H', body[0:2])[0]] = body[2]
