# The Bridge's side of OTA through the serial link (docs/protocol.md [L-13]…[L-16]): it fetches a file
# for the host from the hub's one-shot server and hands the bytes over the link as they come, holding at
# most a window of them. Loaded by link_bridge.py for a FETCH and dropped when the pull ends, so a bridge
# that updates no host keeps none of this code (an ESP8266's heap is small).
import errno
import socket
import struct
import sys

from . import port
from . import link_wire as wire

MAX_WINDOW, MAX_CHUNK = 8, 1024  # [L-14] a pull's bounds, whatever the host asks (8: the link's window)


def allowed(bridge, host, port_number):
    # [L-15] Only the broker's host (or one the bridge's owner listed in ota_hosts), only a port from 1024
    # up, and the bridge only reads: a host cannot use the bridge to reach the LAN or to speak to a
    # service. Addresses are compared resolved (the broker may be named, the trigger has an IP).
    c = bridge.config
    if port_number < 1024:
        raise ValueError('port %d is below 1024: the bridge fetches OTA files only from the hub\'s transfer ports' % port_number)
    target = _resolve(host, c['port'])
    for name in [c['broker']] + list(c['ota_hosts']):
        if _resolve(name, c['port']) == target:
            return _resolve(host, port_number)
    raise ValueError('%s is not the broker\'s address: the bridge fetches OTA files only from the broker\'s host (or its ota_hosts)' % host)


def _resolve(name, port_number):
    return socket.getaddrinfo(name, port_number, 0, socket.SOCK_STREAM)[0][-1]


def fetch(bridge, body):
    # FETCH: id, port, window, chunk, address [L-13]; refused with FETCHED code 1 and the reason.
    tid, port_number, window, chunk = struct.unpack('>BHBH', body[:6])
    (host,), _ = wire.strings(body[6:], 1)
    host = host.decode('utf-8')
    if bridge.transfer:
        bridge.stats['fetch_refused'] += 1
        fetched(bridge, tid, 1, 0, 'a transfer is already running: one at a time')  # [L-14]
        return
    sock = None
    try:
        address = allowed(bridge, host, port_number)
        sock = socket.socket()
        sock.settimeout(bridge.config['connect_timeout'])
        sock.connect(address)
        sock.setblocking(False)
    except (OSError, ValueError, IndexError) as e:
        if sock:
            sock.close()
        bridge.stats['fetch_refused'] += 1
        bridge.status('fetch refused', str(e))
        fetched(bridge, tid, 1, 0, str(e))
        _drop()
        return
    bridge.stats['fetches'] += 1
    bridge.status('fetch', '%s:%d' % (host, port_number))
    bridge.transfer = [tid, sock, 0, max(1, min(window, MAX_WINDOW)), max(64, min(chunk, MAX_CHUNK)), port.ticks_ms()]


def pull(bridge, now):
    # Reads the next chunk only while the link has fewer than `window` frames unacknowledged: the host's
    # pace sets ours, and the bridge holds at most window x chunk bytes of the file [L-14].
    t = bridge.transfer
    channel = bridge.channel
    while t is bridge.transfer and len(channel.sent) + len(channel.queue) < t[3]:
        try:
            data = t[1].recv(t[4])
        except OSError as e:
            if e.args and e.args[0] in (errno.EAGAIN, errno.ETIMEDOUT):
                data = None
            else:
                fetched(bridge, t[0], 1, t[2], 'the hub\'s connection failed: %r' % e)
                end(bridge)
                return
        if data is None:  # nothing yet (a non-blocking board socket may answer None)
            if port.ticks_diff(now, t[5]) > bridge.config['ota_idle'] * 1000:
                fetched(bridge, t[0], 1, t[2], 'no data from the hub for %d s' % bridge.config['ota_idle'])
                end(bridge)
            return
        if not data:  # the hub closed: everything was read
            fetched(bridge, t[0], 0, t[2], 'ok')
            end(bridge)
            return
        if not channel.send(wire.DATA, struct.pack('>BI', t[0], t[2]) + data):
            end(bridge)  # no session: the host's side of the pull ended with it [L-16]
            return
        t[2] += len(data)
        t[5] = now
        bridge.stats['fetch_bytes'] += len(data)


def fetched(bridge, tid, code, total, detail):
    bridge.channel.send(wire.FETCHED, struct.pack('>BBI', tid, code, total) + detail[:200].encode('utf-8'))  # [L-3]


def end(bridge):
    # The pull is over (done, failed, stopped by the host, or the link session ended [L-16]): the hub's
    # connection closes, and this module goes until the next FETCH.
    if bridge.transfer:
        try:
            bridge.transfer[1].close()
        except OSError:
            pass
        bridge.transfer = []
    _drop()


def _drop():
    sys.modules.pop('mqttkit.link_pull', None)
    package = sys.modules.get('mqttkit')
    if hasattr(package, 'link_pull'):
        delattr(package, 'link_pull')
