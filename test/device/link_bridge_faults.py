# The Bridge under load and faults, in CPython with the PC port; run by test/unit/link-types.test.ts, one
# JSON line. A real Bridge and the host's side of the wire (a link_wire.Channel) over in-memory pipes:
# - pubok: a burst of broker messages for the host fills the link's queue, the broker's PUBACK for the
#   host's QoS 1 message comes in while even the control frames' reserve is full: the host still gets
#   its PUBOK once the link drains (the bridge keeps it until the link takes it) [L-10][L-17];
# - too_big: a broker message larger than a frame holds is dropped and counted, the link goes on [L-17];
# - time: an SNTP query does not hold the loop: the answer, sent only after step() returned, reaches
#   the host; a silent server is given up ([L-18]);
# - host_too_big: the Host's publish of more than a frame holds is dropped and counted [L-3].
import json
import os
import socket
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'device', 'micropython'))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'device', 'micropython', 'pc'))
import mqttkit_pc_port  # noqa: E402

mqttkit_pc_port.install(tempfile.mkdtemp())
from mqttkit import link_bridge  # noqa: E402
from mqttkit import link_wire as wire  # noqa: E402
from mqttkit.link import Bridge  # noqa: E402


class Pipe:
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


class Broker:
    # The bridge's MQTT client as _broker() sees it: nothing to read, the PUBACKs in `unacked`.
    def __init__(self):
        self.unacked = {}

    def check_msg(self, timeout_ms=0):
        return 0


def pair(config=None):
    # A Bridge and the host's end of the wire, in session.
    a, b = Pipe(), Pipe()
    a.peer, b.peer = b, a
    events = []
    bridge = Bridge(a, dict({'ntp_host': '', 'link_timeout': 60}, **(config or {})), status=lambda e, d=None: events.append([e, d]))
    got = []
    host = wire.Channel(b, wire.HOST, lambda kind, body: got.append((kind, body)), mqttkit_pc_port, timeout_ms=60000)
    for _ in range(100):
        host.poll(0)
        bridge.step(0)
        if host.up and bridge.channel.up:
            break
    return bridge, host, got, events


def drain(bridge, host, until=lambda: False, rounds=400):
    for _ in range(rounds):
        host.poll(0)
        bridge.step(0)
        if until() or (not bridge.channel.sent and not bridge.channel.queue and until is None):
            return


def attempt(run):
    try:
        return run()
    except Exception as e:  # the finding: it escaped the bridge's loop
        return {'raised': repr(e)}


def pubok():
    bridge, host, got, _ = pair()
    bridge.client = Broker()
    bridge.keepalive = 0
    for i in range(48):
        bridge._forward('cmnd/host-1/OTA', b'#%d stats' % i, False)  # the host's commands pile up
    for i in range(4):
        bridge._say(link_bridge.WIFI_UP)  # control frames fill the reserve too
    bridge.pending = {101: 7}  # the host's packet 7: the broker's PUBACK is in (101 not in unacked)
    bridge.step(0)
    kept = dict(bridge.pending)
    drain(bridge, host, lambda: not bridge.channel.sent and not bridge.channel.queue and not bridge.pending)
    kinds = [kind for kind, _ in got]
    return {'pubok': [struct.unpack('>H', body)[0] for kind, body in got if kind == wire.PUBOK], 'kept_while_full': list(kept.values()),
            'msg': kinds.count(wire.MSG), 'status': kinds.count(wire.STATUS), 'forwarded': bridge.stats['forwarded'], 'dropped': bridge.stats['dropped']}


def too_big():
    bridge, host, got, events = pair()
    bridge._forward('cmnd/host-1/OTA', b'x' * 2000, False)
    bridge._forward('cmnd/host-1/OTA', b'after', False)
    drain(bridge, host, lambda: len(got) >= 1 and not bridge.channel.sent)
    return {'delivered': [body[-5:].decode() for kind, body in got if kind == wire.MSG], 'too_big': bridge.stats.get('too_big'),
            'event': [e for e in events if e[0] == 'message too big'], 'up': bridge.channel.up}


def sntp():
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(('127.0.0.1', 0))
    server.settimeout(2)
    bridge, host, got, events = pair({'ntp_host': '127.0.0.1', 'ntp_port': server.getsockname()[1]})
    bridge.step(0)  # the query goes out (if it waited for the answer, it would have timed out by now)
    try:
        query, sender = server.recvfrom(48)
    except OSError:
        return {'asked': False}
    reply = bytearray(48)
    reply[40:44] = struct.pack('>I', 1700000000 + link_bridge.NTP_1970)
    server.sendto(bytes(reply), sender)
    deadline = time.time() + 3
    while time.time() < deadline and not any(kind == wire.TIME for kind, _ in got):
        host.poll(0)
        bridge.step(0)
        time.sleep(0.005)
    times = [struct.unpack('>I', body)[0] for kind, body in got if kind == wire.TIME]
    # a server that never answers: given up after NTP_WAIT_MS (shortened here), reported, socket closed
    link_bridge.NTP_WAIT_MS = 50
    bridge.time_at = None
    bridge.step(0)
    asked_again = server.recvfrom(48)[0] == query
    deadline = time.time() + 3
    while time.time() < deadline and getattr(bridge, 'ntp', None):
        bridge.step(0)
        time.sleep(0.005)
    server.close()
    return {'asked': query[:1].hex(), 'time': times, 'asked_again': asked_again, 'given_up': not getattr(bridge, 'ntp', None),
            'failed': [e[1] for e in events if e[0] == 'time failed']}


def host_too_big():
    from mqttkit.link import Host
    from mqttkit.link_host import LinkClient
    host = Host(Pipe(), {'device_id': 'unit-1'})
    host.channel.uart.peer = Pipe()
    host.channel.up = True
    host.channel.peer = 5
    client = LinkClient(host)
    client.publish('stat/unit-1/Log', 'x' * 2000, 1)
    small = client.publish('stat/unit-1/Log', 'small', 1)
    host.channel.poll(0)
    return {'too_big': host.stats.get('too_big'), 'unacked': list(client.unacked), 'small': small, 'queued': len(host.channel.sent) + len(host.channel.queue)}


print(json.dumps({'pubok': attempt(pubok), 'too_big': attempt(too_big), 'time': attempt(sntp), 'host_too_big': attempt(host_too_big)}))
