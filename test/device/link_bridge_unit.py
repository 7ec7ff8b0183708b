# The Bridge's OTA fetch rules [L-14][L-15], in CPython with the PC port; run by
# test/unit/link-types.test.ts, one JSON line: what the bridge answered (FETCHED code and reason) to each
# FETCH a host sent, and whether it connected to the server (the broker's host) at all.
import json
import os
import socket
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'device', 'micropython'))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'device', 'micropython', 'pc'))
import mqttkit_pc_port  # noqa: E402

mqttkit_pc_port.install(tempfile.mkdtemp())
from mqttkit import link_wire as wire  # noqa: E402
from mqttkit.link import Bridge  # noqa: E402


class Quiet:
    def any(self):
        return 0

    def read(self, n):
        return b''

    def write(self, b):
        return len(b)


server = socket.socket()
server.bind(('127.0.0.1', 0))
server.listen(4)
server.settimeout(0.5)
port_number = server.getsockname()[1]
elsewhere = socket.socket()
elsewhere.bind(('127.0.0.2', 0))
elsewhere.listen(4)
elsewhere.settimeout(0.5)

bridge = Bridge(Quiet(), {'broker': '127.0.0.1', 'ntp_host': ''})
sent = []
bridge.channel.send = lambda kind, body=b'': sent.append((kind, body)) or True


def fetch(tid, host, port):
    bridge._deliver(wire.FETCH, struct.pack('>BHBH', tid, port, 3, 512) + wire.string(host))


def accepted(sock):
    try:
        sock.accept()[0].close()
        return True
    except OSError:
        return False


fetch(1, '127.0.0.1', port_number)
first = bool(bridge.transfer) and accepted(server)
fetch(2, '127.0.0.1', port_number)  # one at a time [L-14]
bridge._deliver(wire.STOP, bytes([1]))
stopped = not bridge.transfer
fetch(3, '127.0.0.2', elsewhere.getsockname()[1])  # another address on the LAN [L-15]
fetch(4, '127.0.0.1', 22)  # a low port on the broker's host [L-15]
answers = [[body[0], body[1], body[6:].decode()] for kind, body in sent if kind == wire.FETCHED]
print(json.dumps({'first': first, 'stopped': stopped, 'answers': answers, 'elsewhere_connected': accepted(elsewhere),
                  'refused': bridge.stats['fetch_refused']}))
