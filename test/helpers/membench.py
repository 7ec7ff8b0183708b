# The scripted peer for the device library's memory measurements (test/helpers/device-memory.ts), run
# inside MicroPython (WebAssembly). A socket stand-in that plays the MQTT broker (CONNACK, SUBACK,
# PUBACK, PINGRESP, publishes it is told to inject) and the OTA pull server (a file generated as it is
# read: byte i is i & 0xff, so the peer never holds the file). Imported before the baseline: its own
# objects are not the library's.
#
# This WebAssembly build collects garbage only when control returns to JavaScript (gc.collect() inside
# a call just sets a flag: ports/webassembly/main.c, MICROPY_GC_SPLIT_HEAP_AUTO). So inside one call
# nothing is freed, and mark() at the start and the end of a step sees every allocation the step made;
# between calls, live() reads the heap in use exactly.
import gc
import io
import micropython

STATE = {'label': 'import', 'max_read': 0, 'reads': 0, 'pull_size': 0}
REPORTS = []  # payloads the device published on stat/<id>/OTA


def mark(where):
    print('@@', STATE['label'], where, gc.mem_alloc())
    micropython.mem_info(1)


def live():
    return gc.mem_alloc()


def note_read(peer, n):
    if isinstance(peer, PullServer):
        STATE['reads'] += 1
        if n > STATE['max_read']:
            STATE['max_read'] = n


def _length(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return out


class Broker:
    current = None

    def __init__(self):
        self.inbox = bytearray()  # bytes on their way to the device
        self.pos = 0
        self.pid = 0
        self.published = 0
        Broker.current = self

    def pending(self):
        return len(self.inbox) - self.pos

    def feed(self, data):
        i = 0
        while i < len(data):
            kind = data[i]
            n = 0
            shift = 0
            j = i + 1
            while True:
                b = data[j]
                n |= (b & 0x7F) << shift
                j += 1
                if not b & 0x80:
                    break
                shift += 7
            t = kind & 0xF0
            if t == 0x10:
                self.inbox.extend(b'\x20\x02\x00\x00')
            elif t == 0x80:
                self.inbox.extend(b'\x90\x03')
                self.inbox.extend(data[j:j + 2])
                self.inbox.append(1)
            elif t == 0x30:
                self.published += 1
                tl = (data[j] << 8) | data[j + 1]
                topic = bytes(data[j + 2:j + 2 + tl])
                start = j + 2 + tl
                if kind & 0x06:
                    self.inbox.extend(b'\x40\x02')
                    self.inbox.extend(data[start:start + 2])
                    start += 2
                if topic.startswith(b'stat/') and topic.endswith(b'/OTA'):
                    REPORTS.append(bytes(data[start:j + n]))
            elif t == 0xC0:
                self.inbox.extend(b'\xd0\x00')
            i = j + n

    def inject(self, topic, payload):
        # A QoS 1 PUBLISH from the hub (a command, a HomeKit write, an OTA trigger).
        self.pid = self.pid % 65535 + 1
        topic = topic.encode()
        payload = payload.encode()
        body = bytes([len(topic) >> 8, len(topic) & 0xFF]) + topic + bytes([self.pid >> 8, self.pid & 0xFF]) + payload
        self.inbox.extend(bytes([0x32]) + _length(len(body)) + body)

    def take(self, n):
        k = min(n, len(self.inbox) - self.pos)
        out = bytes(self.inbox[self.pos:self.pos + k])
        self.pos += k
        if self.pos == len(self.inbox):
            self.inbox = bytearray()
            self.pos = 0
        return out

    def fill(self, buf, n):
        k = min(n, len(self.inbox) - self.pos)
        buf[:k] = self.inbox[self.pos:self.pos + k]
        self.pos += k
        if self.pos == len(self.inbox):
            self.inbox = bytearray()
            self.pos = 0
        return k


PATTERN = bytes(range(256)) * 3  # chunks of up to 512 bytes are slices of it: one allocation each


class PullServer:
    def __init__(self, size):
        self.size = size
        self.pos = 0
        self.ended = False
        mark('transfer-start')

    def end(self, k):
        if k == 0 and not self.ended:
            self.ended = True
            mark('transfer-end')

    def pending(self):
        return True

    def feed(self, data):
        pass

    def fill(self, buf, n):
        k = min(n, self.size - self.pos)
        pos = self.pos
        for i in range(k):
            buf[i] = (pos + i) & 0xFF
        self.pos += k
        self.end(k)
        return k

    def take(self, n):
        k = min(n, self.size - self.pos)
        start = self.pos & 0xFF
        if k <= 512:
            out = PATTERN[start:start + k]
            self.pos += k
        else:
            buf = bytearray(k)
            self.fill(buf, k)
            out = bytes(buf)
        self.end(k)
        return out


class FakeSocket(io.IOBase):
    # The board socket's surface (docs/library/socket.html): no getsockname(), a stream for select.poll.
    def __init__(self, *args):
        self.peer = None

    def settimeout(self, value):
        pass

    def setblocking(self, flag):
        pass

    def setsockopt(self, *args):
        pass

    def connect(self, address):
        self.peer = Broker() if address[1] == 1883 else PullServer(STATE['pull_size'])

    def ioctl(self, request, arg):
        if request == 3:  # MP_STREAM_POLL
            return arg & 1 if self.peer is not None and self.peer.pending() else 0
        return 0

    def send(self, data):
        self.peer.feed(data)
        return len(data)

    def sendall(self, data):
        self.send(data)

    def write(self, data):
        return self.send(data)

    def recv(self, n):
        # A board's recv(n) allocates n bytes before it knows how many arrived: model that for the
        # broker's small packets (a pull read returns full chunks: its slice is that allocation).
        note_read(self.peer, n)
        if isinstance(self.peer, Broker):
            reserved = bytearray(n)
            del reserved
        return self.peer.take(n)

    def read(self, n=-1):
        return self.recv(n if n > 0 else 4096)

    def readinto(self, buf, nbytes=0):
        n = nbytes or len(buf)
        note_read(self.peer, n)
        return self.peer.fill(buf, n)

    def close(self):
        self.peer = None
