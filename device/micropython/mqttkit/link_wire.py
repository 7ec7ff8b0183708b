# The serial link's wire (docs/protocol.md, "Serial link", [L-1]…[L-17]): frames cut by a zero byte and
# COBS-encoded, each with a CRC-32; epochs that tell a reset peer from a live one; sequence numbers,
# acknowledgements and retransmission for the frames that must arrive (in order, exactly once per
# session). Shared by the Host (link.py) and the Bridge (link_bridge.py). Pure functions first, then the
# Channel, a thin shell over a UART-like object (any(), read(n), write(b)). Needs only time and binascii,
# so it runs on any MicroPython port (the clock comes in as a parameter: mqttkit.port on a board).
import binascii
import struct

MAGIC = b'MQKL'
VERSION = 1
HEADER = 11  # type, from epoch (4), to epoch (4), seq (2)
MAX_BODY = 1400  # [L-3] a topic (<= 256) and a payload (<= 1024, protocol [P-3]) with room to spare
MAX_FRAME = HEADER + MAX_BODY + 4
MAX_ENCODED = MAX_FRAME + MAX_FRAME // 254 + 2

# Frame types [L-4]: HELLO and ACK are sent unreliably; every other type is reliable (seq >= 1).
HELLO, ACK = 1, 2
OPEN, SUB, PUB, CLOSE = 16, 17, 18, 19  # host -> bridge
FETCH, STOP = 20, 21  # host -> bridge: an OTA pull through the bridge [L-13]
STATUS, PUBOK, MSG, TIME, OPENED = 32, 33, 34, 35, 36  # bridge -> host
DATA, FETCHED = 37, 38  # bridge -> host: the pulled bytes and the end of the pull [L-13]
HOST, BRIDGE = 1, 2  # roles in HELLO
# [L-17] Bulk frames (a broker message, a host's publish, a file chunk) may not take the last RESERVE
# places of the queue: they stay for the control frames (PUBOK, OPENED, STATUS, FETCHED, OPEN, ...).
BULK = (PUB, MSG, DATA)
RESERVE = 4


def crc32(data):
    # [L-2] CRC-32 (IEEE 802.3, the one binascii.crc32 computes).
    return binascii.crc32(data) & 0xFFFFFFFF


def cobs_encode(data):
    # [L-1] Consistent Overhead Byte Stuffing: the output holds no zero byte.
    out = bytearray(b'\x00')
    code_at = 0
    code = 1
    for b in data:
        if b:
            out.append(b)
            code += 1
        if not b or code == 0xFF:
            out[code_at] = code
            code_at = len(out)
            out.append(0)
            code = 1
    out[code_at] = code
    return bytes(out)


def cobs_decode(data):
    # Returns the decoded bytes, or None for a malformed block (a zero inside, a code past the end).
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0 or i + code > n:
            return None
        chunk = data[i + 1:i + code]
        if 0 in chunk:
            return None
        out.extend(chunk)
        i += code
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


def pack(kind, sender, receiver, seq, body=b''):
    # One frame on the wire: COBS(header + body + CRC-32) and the zero that ends it [L-1][L-2][L-3].
    if len(body) > MAX_BODY:
        raise ValueError('frame body of %d bytes is over the limit of %d' % (len(body), MAX_BODY))
    raw = struct.pack('>BIIH', kind, sender, receiver, seq) + body
    return cobs_encode(raw + struct.pack('>I', crc32(raw))) + b'\x00'


def unpack(block):
    # A block between two zeros -> (kind, sender, receiver, seq, body), or a reason it was dropped.
    raw = cobs_decode(block)
    if raw is None:
        return 'bad_cobs'
    if len(raw) < HEADER + 4 or len(raw) > MAX_FRAME:
        return 'bad_length'
    if struct.unpack('>I', raw[-4:])[0] != crc32(raw[:-4]):
        return 'bad_crc'
    kind, sender, receiver, seq = struct.unpack('>BIIH', raw[:HEADER])
    return kind, sender, receiver, seq, raw[HEADER:-4]


class Splitter:
    # Bytes as they come off the UART -> the blocks between zero bytes, bounded [L-3]: a block that grows
    # past MAX_ENCODED is garbage (a lost zero, noise) and is skipped up to the next zero.
    def __init__(self):
        self.buffer = bytearray()
        self.skipping = False
        self.oversize = 0

    def feed(self, data):
        blocks = []
        for b in data:
            if b == 0:
                if self.buffer and not self.skipping:
                    blocks.append(bytes(self.buffer))
                self.buffer = bytearray()
                self.skipping = False
            elif not self.skipping:
                self.buffer.append(b)
                if len(self.buffer) > MAX_ENCODED:
                    self.oversize += 1
                    self.skipping = True
                    self.buffer = bytearray()
        return blocks


def string(s):
    if isinstance(s, str):
        s = s.encode('utf-8')
    return struct.pack('>H', len(s)) + s


def strings(body, count):
    # The first `count` length-prefixed strings of a body and the rest: ([bytes, ...], rest). Raises
    # ValueError on a short body (a peer's bug: the channel's CRC passed).
    out = []
    at = 0
    for _ in range(count):
        if at + 2 > len(body):
            raise ValueError('short frame body')
        n = struct.unpack('>H', body[at:at + 2])[0]
        if at + 2 + n > len(body):
            raise ValueError('short frame body')
        out.append(body[at + 2:at + 2 + n])
        at += 2 + n
    return out, body[at:]


def new_epoch(clock, role):
    # [L-5] a random 31-bit number per session (os.urandom, else random, which most ports seed from a
    # hardware RNG, else the clock), its top bit the role: a host's and a bridge's never collide.
    try:
        from os import urandom
        e = struct.unpack('>I', urandom(4))[0]
    except ImportError:
        try:
            from random import getrandbits
            e = getrandbits(32)
        except ImportError:
            e = clock.ticks_ms() * 2654435761
    return (e & 0x7FFFFFFF or 1) | (0x80000000 if role == BRIDGE else 0)


class Channel:
    # The reliable link between two peers over a UART [L-5]…[L-9]. deliver(kind, body) runs for each
    # reliable frame, once, in order; on_reset(why) when the session ends (the peer restarted or fell
    # silent). clock has ticks_ms(), ticks_diff(a, b) and sleep_ms(ms): mqttkit.port, or the property
    # tests' virtual time.
    def __init__(self, uart, role, deliver, clock, on_reset=None, heartbeat_ms=500, timeout_ms=5000, retry_ms=300, window=8, queue=48):
        self.uart = uart
        self.role = role
        self.deliver = deliver
        self.on_reset = on_reset or (lambda why: None)
        self.clock = clock
        self.heartbeat_ms = heartbeat_ms
        self.timeout_ms = timeout_ms
        self.retry_ms = retry_ms
        self.window = window
        self.limit = queue
        self.epoch = new_epoch(clock, role)
        self.splitter = Splitter()
        self.stats = {'frames_in': 0, 'frames_out': 0, 'bad_cobs': 0, 'bad_length': 0, 'bad_crc': 0, 'oversize': 0,
                      'stale': 0, 'duplicate': 0, 'ahead': 0, 'retransmits': 0, 'resets': 0, 'refused': 0, 'bad_body': 0}
        self.last_bad = None  # the last body this side could not take [L-17]: 'kind: reason'
        self.ended = []  # peers we had a session with under this epoch [L-5]
        self.quiet_ms = heartbeat_ms * 5 // 2
        self._start(0)
        now = clock.ticks_ms()
        self.last_heard = now
        self.last_hello = now - heartbeat_ms

    def _start(self, peer):
        # A new session with `peer` (0: none yet): sequence numbers start again at 1 both ways [L-6].
        self.peer = peer
        self.up = False  # the peer has named our epoch: it knows this session
        self.next_seq = 1
        self.expected = 1
        self.sent = []  # [seq, kind, body, last sent] not yet acknowledged, in order
        self.queue = []  # (kind, body) waiting for room in the window

    def up_now(self):
        return self.up

    def send(self, kind, body=b''):
        # Queues a reliable frame; False when the queue is full or no session is up (the caller decides
        # what is lost: it is counted there). A bulk frame finds the queue full RESERVE places earlier
        # [L-17]. A body over the limit is the caller's bug: refused here, before it is queued (in the
        # queue it would raise at every retransmission).
        if len(body) > MAX_BODY:
            raise ValueError('frame body of %d bytes is over the limit of %d' % (len(body), MAX_BODY))
        if not self.up or len(self.sent) + len(self.queue) >= self.limit - (RESERVE if kind in BULK else 0):
            return False
        self.queue.append((kind, body))
        self._pump()
        return True

    def _write(self, kind, seq, body=b''):
        self.uart.write(pack(kind, self.epoch, self.peer, seq, body))
        self.stats['frames_out'] += 1

    def _pump(self):
        while self.queue and len(self.sent) < self.window:
            kind, body = self.queue.pop(0)
            seq = self.next_seq
            self.next_seq = self.next_seq % 0xFFFF + 1  # [L-6] 1..65535, never 0
            self.sent.append([seq, kind, body, self.clock.ticks_ms()])
            self._write(kind, seq, body)

    def reset(self, why):
        # [L-8] Ends the session and takes a new epoch: the peer, which may not have noticed (a wire cut
        # one way), sees the new epoch and starts a new session too; frames of the old one are refused.
        self.epoch = new_epoch(self.clock, self.role)
        self.ended = []
        self._start(0)
        self.stats['resets'] += 1
        self.on_reset(why)

    def _switch(self, peer):
        # [L-5] a session with a new peer epoch (the peer restarted, or this is the first). Sequence state
        # starts again; a peer we already had a session with under this epoch would find ours gone
        # while it still keeps its own, so then we take a new epoch too.
        was = self.peer
        if was:
            self.ended.append(was)
            self.ended = self.ended[-8:]
        if peer in self.ended:
            self.epoch = new_epoch(self.clock, self.role)
            self.ended = []
        self._start(peer)
        self.last_heard = self.clock.ticks_ms()
        self.last_hello = self.last_heard - self.heartbeat_ms  # answer at once: it learns our epoch
        if was:
            self.stats['resets'] += 1
            self.on_reset('peer restarted')

    def poll(self, wait_ms=0):
        # Reads what the UART has (waiting up to wait_ms for something), handles it, and sends what is
        # due: heartbeats, retransmissions. Returns the number of reliable frames delivered.
        delivered = 0
        c = self.clock
        start = c.ticks_ms()
        while True:
            n = self.uart.any()
            if n:
                for block in self.splitter.feed(self.uart.read(n) or b''):
                    delivered += self._receive(block)
            self._timers()
            if delivered or n or c.ticks_diff(c.ticks_ms(), start) >= wait_ms:
                break
            c.sleep_ms(2)
        self.stats['oversize'] = self.splitter.oversize
        return delivered

    def beat(self):
        # [L-7] the heartbeat: HELLO names us, our role and the peer epoch we know (0 if none)
        now = self.clock.ticks_ms()
        if self.clock.ticks_diff(now, self.last_hello) >= self.heartbeat_ms:
            self.last_hello = now
            self._write(HELLO, 0, MAGIC + bytes([VERSION, self.role]))

    def _timers(self):
        self.beat()
        diff = self.clock.ticks_diff
        now = self.clock.ticks_ms()
        if self.peer and diff(now, self.last_heard) > self.timeout_ms:
            self.reset('link silent for %d ms' % self.timeout_ms)  # [L-8]
            return
        for entry in self.sent:
            # [L-9] go-back-n: everything unacknowledged goes again, in order, after retry_ms
            if diff(now, entry[3]) >= self.retry_ms:
                entry[3] = now
                self._write(entry[1], entry[0], entry[2])
                self.stats['retransmits'] += 1

    def _receive(self, block):
        frame = unpack(block)
        if isinstance(frame, str):
            self.stats[frame] += 1
            return 0
        kind, sender, receiver, seq, body = frame
        if sender == self.epoch or sender == 0:
            self.stats['refused'] += 1  # our own frames echoed back (TX wired to RX), or nonsense
            return 0
        if kind == HELLO:
            return self._hello(sender, receiver, body)
        if sender != self.peer or receiver != self.epoch:
            self.stats['stale'] += 1  # [L-5] from another session: before a reset, or not for us
            return 0
        self.last_heard = self.clock.ticks_ms()
        self.up = True
        if kind == ACK:
            while self.sent and _before_or_at(self.sent[0][0], seq):
                self.sent.pop(0)
            self._pump()
            return 0
        # [L-6] in order, exactly once: the next one is delivered and acknowledged, one already
        # delivered is acknowledged again, one ahead of a gap is dropped (it comes again, in order)
        if seq == self.expected:
            self.expected = self.expected % 0xFFFF + 1
            self._write(ACK, seq)
            self.stats['frames_in'] += 1
            try:
                self.deliver(kind, body)
            except Exception as e:
                # [L-17] a body the upper layer cannot take (short, not UTF-8, a value out of range: a
                # peer's bug or a hostile peer, the CRC passed) is counted and dropped; it never ends
                # the program (a board would reboot, and the peer could do it again at will)
                self.stats['bad_body'] += 1
                self.last_bad = ('%d: %r' % (kind, e))[:80]
            return 1
        if _before_or_at(seq, _previous(self.expected)):
            self.stats['duplicate'] += 1
            self._write(ACK, _previous(self.expected))
        else:
            self.stats['ahead'] += 1
        return 0

    def _hello(self, sender, receiver, body):
        if body[:4] != MAGIC or len(body) < 6 or body[4] != VERSION or body[5] == self.role:
            self.stats['refused'] += 1  # [L-4] another protocol, version, or a peer in our own role
            return 0
        now = self.clock.ticks_ms()
        if sender != self.peer:
            # [L-5] another epoch: the peer restarted, or a late copy of a HELLO from a dead one. Only a
            # peer that has been quiet for quiet_ms is given up for it (a live peer keeps talking).
            if self.peer and self.clock.ticks_diff(now, self.last_heard) < self.quiet_ms:
                self.stats['stale'] += 1
                return 0
            self._switch(sender)
        if receiver == self.epoch:
            self.last_heard = now
            self.up = True  # it knows our epoch: the session is up both ways
        return 0


def _previous(seq):
    return (seq - 2) % 0xFFFF + 1


def _before_or_at(a, b):
    # a <= b in sequence space (1..65535 wrapping), for a window far smaller than half the space
    return (b - a) % 0xFFFF < 0x8000
