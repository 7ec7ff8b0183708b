# The serial link's wire (mqttkit/link_wire.py) under the property tests (test/property/link-wire.test.ts):
# fast-check sends one case a line as JSON on stdin; each answer is one JSON line {"ok": bool, ...}.
# Cases:
#   roundtrip  {data}: COBS and a whole frame survive encode/decode unchanged, with no zero inside
#   garbage    {data}: arbitrary bytes never raise and never yield a frame (CRC-32: 1 in 2^32)
#   mutate     {body, flips}: a frame with bits flipped or cut short is never taken for another frame
#   session    {seed, drop, dup, garbage, truncate, flip, resets, cuts, messages}: two Channels over a
#              medium that drops, duplicates (late copies), truncates, flips bits, inserts garbage,
#              falls silent, and resets either side; every session delivers in order, exactly once,
#              nothing that was not sent, and once the medium is clean everything sent arrives
#   body       {side, kind, mode, data, at, byte}: a real Host or Bridge, in session with a peer that
#              speaks the wire correctly, is sent one reliable frame of `kind` whose body is random or a
#              well-formed one cut, corrupted or extended; it never raises, the frame is taken (ACKed),
#              the session stays up and the next frame is delivered; a body it cannot take is counted
#              in bad_body [L-17]
import json
import os
import random
import socket
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'device', 'micropython'))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'device', 'micropython', 'pc'))

import mqttkit_pc_port  # noqa: E402

mqttkit_pc_port.install(tempfile.mkdtemp())
from mqttkit import link_wire as w  # noqa: E402


def _no_network(*args, **kwargs):
    raise OSError('no network in the property test')


socket.getaddrinfo = _no_network  # a random OPEN or FETCH must not reach anything on this machine


class Clock:
    def __init__(self):
        self.t = 0

    def ticks_ms(self):
        return self.t

    def ticks_diff(self, a, b):
        return a - b

    def sleep_ms(self, ms):
        self.t += ms


def roundtrip(case):
    data = bytes.fromhex(case['data'])
    encoded = w.cobs_encode(data)
    if 0 in encoded or w.cobs_decode(encoded) != data:
        return {'ok': False, 'why': 'cobs', 'encoded': encoded.hex()}
    body = data[:w.MAX_BODY]
    frame = w.pack(w.PUB, 0x01020304, 0xA0B0C0D0, 77, body)
    blocks = w.Splitter().feed(frame)
    if len(blocks) != 1 or w.unpack(blocks[0]) != (w.PUB, 0x01020304, 0xA0B0C0D0, 77, body):
        return {'ok': False, 'why': 'frame', 'blocks': [b.hex() for b in blocks]}
    return {'ok': True}


def garbage(case):
    splitter = w.Splitter()
    accepted = []
    data = bytes.fromhex(case['data'])
    for at in range(0, len(data), 17):  # as a UART hands it over: in pieces
        for block in splitter.feed(data[at:at + 17]):
            frame = w.unpack(block)
            if not isinstance(frame, str):
                accepted.append(block.hex())
            if len(splitter.buffer) > w.MAX_ENCODED:
                return {'ok': False, 'why': 'unbounded buffer'}
    return {'ok': not accepted, 'accepted': accepted}


def mutate(case):
    body = bytes.fromhex(case['body'])[:w.MAX_BODY]
    frame = bytearray(w.pack(w.MSG, 5, 6, 9, body))
    original = (w.MSG, 5, 6, 9, body)
    for at in case['flips']:
        bit = at % (len(frame) * 8)
        frame[bit // 8] ^= 1 << (bit % 8)
    if case.get('cut'):
        frame = frame[:case['cut'] % len(frame)] + b'\x00'
    for block in w.Splitter().feed(bytes(frame) + b'\x00'):
        got = w.unpack(block)
        if not isinstance(got, str) and got != original:
            return {'ok': False, 'why': 'a damaged frame was accepted', 'got': repr(got)}
    return {'ok': True}


class Medium:
    # One direction of the wire. Chunks keep their order (a UART does), except the late copies the
    # medium injects as "duplicated frames".
    def __init__(self, rng, p):
        self.rng = rng
        self.p = p
        self.buffer = bytearray()
        self.late = []  # [due tick, chunk]
        self.cut = False
        self.clean = False

    def write(self, chunk, now):
        r = self.rng
        if self.cut:
            return
        if not self.clean:
            if r.random() < self.p['drop']:
                return
            if r.random() < self.p['garbage']:
                self.buffer.extend(bytes(r.getrandbits(8) for _ in range(r.randint(1, 30))))
            if r.random() < self.p['truncate'] and len(chunk) > 2:
                chunk = chunk[:r.randint(1, len(chunk) - 1)]
            if r.random() < self.p['flip']:
                chunk = bytearray(chunk)
                chunk[r.randrange(len(chunk))] ^= 1 << r.randrange(8)
                chunk = bytes(chunk)
            if r.random() < self.p['dup']:
                self.late.append([now + r.randint(1, 8000), bytes(chunk)])
        self.buffer.extend(chunk)

    def tick(self, now):
        for item in [x for x in self.late if x[0] <= now]:
            self.late.remove(item)
            if not self.cut:
                self.buffer.extend(item[1])


class End:
    # One side's UART: reads from `inbox`, writes into `outbox`.
    def __init__(self, inbox, outbox, clock):
        self.inbox = inbox
        self.outbox = outbox
        self.clock = clock

    def any(self):
        return len(self.inbox.buffer)

    def read(self, n):
        n = min(n, self.inbox.rng.randint(1, 64))  # a UART hands over what it has, in pieces
        data = bytes(self.inbox.buffer[:n])
        del self.inbox.buffer[:n]
        return data

    def write(self, data):
        self.outbox.write(bytes(data), self.clock.t)
        return len(data)


class Side:
    # The upper layer of one side: counts its sessions (a reboot or a link reset starts a new one),
    # sends numbered messages, and records what it is delivered.
    def __init__(self, name, role, uart, clock):
        self.name = name
        self.role = role
        self.uart = uart
        self.clock = clock
        self.boot = 0
        self.received = []  # (sender name, sender boot, sender session, index)
        self.sent = {}  # (boot, session) -> number of messages accepted by send()
        self.reboot()

    def reboot(self):
        self.boot += 1
        self.session = 0
        self.channel = w.Channel(self.uart, self.role, self.deliver, self.clock, self.on_reset, heartbeat_ms=200, timeout_ms=1500, retry_ms=150, window=4, queue=12)

    def on_reset(self, why):
        self.session += 1

    def deliver(self, kind, body):
        self.received.append(tuple(json.loads(body)))

    def try_send(self):
        key = (self.boot, self.session)
        n = self.sent.get(key, 0)
        if self.channel.send(w.MSG, json.dumps([self.name, self.boot, self.session, n]).encode()):
            self.sent[key] = n + 1


def check(receiver, sender, final_key):
    # Per sender session: delivered indices are 0, 1, 2, … (in order, no duplicate, no gap), never more
    # than were sent; the final session's are all of them.
    by_session = {}
    for name, boot, session, index in receiver.received:
        if name != sender.name:
            return 'delivered a message %s did not send' % name
        by_session.setdefault((boot, session), []).append(index)
    for key, indices in by_session.items():
        if indices != list(range(len(indices))):
            return 'session %s of %s: delivered %s' % (key, sender.name, indices[:40])
        if len(indices) > sender.sent.get(key, 0):
            return 'session %s: more delivered than sent' % (key,)
    missing = sender.sent.get(final_key, 0) - len(by_session.get(final_key, []))
    if missing:
        return 'final session %s of %s: %d of %d not delivered' % (final_key, sender.name, missing, sender.sent.get(final_key, 0))
    return None


def session(case):
    rng = random.Random(case['seed'])
    clock = Clock()
    p = dict((k, case[k]) for k in ('drop', 'dup', 'garbage', 'truncate', 'flip'))
    ab, ba = Medium(rng, p), Medium(rng, p)
    a = Side('host', w.HOST, End(ba, ab, clock), clock)
    b = Side('bridge', w.BRIDGE, End(ab, ba, clock), clock)
    # the noisy part: sends, resets and cuts at random moments over 20 s of virtual time
    events = sorted([(rng.randint(0, 20000), 'reset', rng.choice((a, b))) for _ in range(case['resets'])] +
                    [(rng.randint(0, 20000), 'cut', None) for _ in range(case['cuts'])], key=lambda e: e[0])
    cut_until = -1
    while clock.t < 20000:
        clock.t += 10
        while events and events[0][0] <= clock.t:
            _at, what, side = events.pop(0)
            if what == 'reset':
                side.reboot()
            else:
                cut_until = clock.t + rng.randint(500, 4000)
        ab.cut = ba.cut = clock.t < cut_until
        ab.tick(clock.t)
        ba.tick(clock.t)
        for side in (a, b):
            if rng.random() < case['messages'] / 2000:
                side.try_send()
            side.channel.poll(0)
    # the clean part: no more damage (late copies already on their way still come), then a last burst
    ab.cut = ba.cut = False
    ab.clean = ba.clean = True
    settle = clock.t + 12000
    burst = 0
    while clock.t < settle:
        clock.t += 10
        ab.tick(clock.t)
        ba.tick(clock.t)
        for side in (a, b):
            side.channel.poll(0)
        if a.channel.up and b.channel.up and burst < 10 and clock.t > settle - 9000:
            a.try_send()
            b.try_send()
            burst += 1
    for side in (a, b):
        if not side.channel.up:
            return {'ok': False, 'why': '%s: no session after the medium turned clean' % side.name, 'stats': side.channel.stats}
    why = check(b, a, (a.boot, a.session)) or check(a, b, (b.boot, b.session))
    stats = dict((k, a.channel.stats[k] + b.channel.stats[k]) for k in a.channel.stats)
    return {'ok': why is None, 'why': why, 'stats': stats, 'delivered': len(a.received) + len(b.received)}


class Pipe:
    # One end of an in-memory wire: writes land in the peer's buffer.
    def __init__(self):
        self.buf = bytearray()
        self.peer = None

    def any(self):
        return len(self.buf)

    def read(self, n):
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def write(self, data):
        self.peer.buf.extend(data)
        return len(data)


# A well-formed body of each reliable kind (docs/protocol.md [L-10][L-13]); the case cuts, corrupts or
# extends it, or replaces it with random bytes.
TEMPLATES = {
    w.OPEN: b''.join(w.string(x) for x in ('prop-host', 'prop-host', 'x' * 16, 'HomeKit/prop-host/$state', 'offline')) + struct.pack('>BBHB', 1, 1, 30, 1),
    w.SUB: w.string('HomeKit/prop-host/+/+/set') + w.string('cmnd/prop-host/OTA'),
    w.PUB: struct.pack('>HBB', 7, 1, 0) + w.string('HomeKit/prop-host/Switch/On') + b'1',
    w.CLOSE: b'',
    w.FETCH: struct.pack('>BHBH', 1, 40000, 3, 512) + w.string('127.0.0.1'),
    w.STOP: b'\x01',
    w.STATUS: b'\x04' + b'broker gone',
    w.PUBOK: struct.pack('>H', 5),
    w.MSG: b'\x00' + w.string('HomeKit/prop-host/Switch/On/set') + b'1',
    w.TIME: struct.pack('>I', 1700000000),
    w.OPENED: b'\x01\x03' + b'127.0.0.1:1883',
    w.DATA: struct.pack('>BI', 1, 0) + b'abc',
    w.FETCHED: struct.pack('>BBI', 1, 0, 3) + b'ok',
}


def hostile_body(case):
    data = bytes.fromhex(case.get('data', ''))
    body = TEMPLATES[case['kind']]
    mode = case['mode']
    if mode == 'random':
        return data
    if mode == 'cut':
        return body[:case['at'] % (len(body) + 1)]
    if mode == 'corrupt' and body:
        at = case['at'] % len(body)
        return body[:at] + bytes([case['byte'] & 0xFF]) + body[at + 1:]
    return (body + data)[:w.MAX_BODY]


def body(case):
    from mqttkit.link import Bridge, Host
    from mqttkit.link_host import LinkSource
    me, other = Pipe(), Pipe()
    me.peer, other.peer = other, me
    if case['side'] == 'host':
        victim = Host(me, {'device_id': 'prop-host', 'password': 'x' * 16, 'link_timeout': 60})
        victim.attempt = 1
        victim.transfer = LinkSource(victim, '127.0.0.1', 40000, 512)
        victim.transfer.id = 1
        step = victim.channel.poll
        peer = w.Channel(other, w.BRIDGE, lambda k, b: None, mqttkit_pc_port, timeout_ms=60000)
        good = (w.STATUS, b'\x06' + b'10.0.0.9')  # the bridge's address [L-16]: seen in bridge_address
    else:
        victim = Bridge(me, {'ntp_host': '', 'broker': '127.0.0.1', 'link_timeout': 60})
        step = victim.step
        peer = w.Channel(other, w.HOST, lambda k, b: None, mqttkit_pc_port, timeout_ms=60000)
        good = (w.CLOSE, b'')
    channel = victim.channel
    for _ in range(50):
        peer.poll(0)
        step(0)
        if peer.up and channel.up:
            break
    if not (peer.up and channel.up):
        return {'ok': False, 'why': 'no session with the peer'}
    before = dict(channel.stats)
    hostile = hostile_body(case)
    for kind, payload in ((case['kind'], hostile), good):
        peer.send(kind, payload)
        for _ in range(50):
            step(0)
            peer.poll(0)
            if not peer.sent and not peer.queue:
                break
    taken = channel.stats['frames_in'] - before['frames_in']
    result = {'ok': True, 'body': hostile.hex(), 'bad_body': channel.stats.get('bad_body', 0) - before.get('bad_body', 0), 'taken': taken,
              'last_bad': getattr(channel, 'last_bad', None)}
    if taken < 2 or peer.sent or peer.queue:
        return dict(result, ok=False, why='the frames were not both taken and acknowledged')
    if channel.stats['resets'] or not channel.up:
        return dict(result, ok=False, why='the session ended')
    if case['side'] == 'host' and victim.bridge_address != '10.0.0.9':
        return dict(result, ok=False, why='the frame after it was not delivered')
    return result


CASES = {'roundtrip': roundtrip, 'garbage': garbage, 'mutate': mutate, 'session': session, 'body': body}

for line in sys.stdin:
    case = json.loads(line)
    try:
        answer = CASES[case['op']](case)
    except Exception as e:  # a crash is a failed property, with its reason
        import traceback
        answer = {'ok': False, 'why': 'raised %r' % e, 'trace': traceback.format_exc()}
    print(json.dumps(answer), flush=True)
