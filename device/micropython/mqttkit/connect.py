# Opening the MQTT session: TCP (and TLS), CONNECT with the last will, CONNACK, the subscriptions, and
# metadata and state ahead of the queue; and leaving it for deep sleep. Loaded only while the device is
# not connected, or going to sleep: device.py drops it once connected (a retry after a failure reuses
# it), so a connected device does not keep it.
import socket
import struct

from . import port
from .mqtt import MQTTClient, MQTTError, _string, packet


class Refused(MQTTError):
    # The broker answered CONNACK with a non-zero code; retrying with the same credentials will not help.
    def __init__(self, code):
        why = ('unacceptable protocol version', 'identifier rejected', 'server unavailable', 'bad username or password', 'not authorized')
        MQTTError.__init__(self, 'connection refused: %s (%d)' % (why[code - 1] if 0 < code < 6 else 'unknown', code))
        self.code = code


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


def _tls(sock, host, params):
    import ssl
    # SSLContext is what MicroPython 1.23+ and CPython share. Given a CA (`cafile` or `cadata`, e.g.
    # the hub's own certificate), the broker's certificate is verified; without one it is not
    # (as ssl.wrap_socket did on boards).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cafile = params.get('cafile')
    cadata = params.get('cadata')
    if cafile or cadata:
        context.load_verify_locations(cafile=cafile, cadata=cadata)
        context.verify_mode = ssl.CERT_REQUIRED
    else:
        setattr(context, 'check_hostname', False)  # CPython refuses CERT_NONE while it is on
        context.verify_mode = ssl.CERT_NONE
    return context.wrap_socket(sock, server_hostname=host)


def open_client(client_id, host, port_number, user, password, keepalive, tls=False, tls_params=None, will=None, timeout=10, feed=None):
    # Returns a connected MQTTClient. feed() runs before each blocking step (lookup, TCP, TLS, CONNACK):
    # each waits at most `timeout` seconds, so a watchdog of twice that period is never starved.
    feed = feed or (lambda: None)
    feed()
    address = socket.getaddrinfo(host, port_number, 0, socket.SOCK_STREAM)[0][-1]
    sock = socket.socket()
    sock.settimeout(timeout)
    try:
        feed()
        sock.connect(address)
        feed()
        if tls:
            sock = _tls(sock, host, tls_params or {})
        feed()
        MQTTClient.write(sock, connect_packet(client_id, user, password, will, keepalive))
        header = b''
        while len(header) < 4:
            feed()
            chunk = MQTTClient.read(sock, 4 - len(header))
            if not chunk:
                raise OSError('connection closed by the broker')
            header += chunk
    except OSError as e:
        sock.close()
        raise MQTTError('cannot connect to %s:%s: %s' % (host, port_number, e))
    if header[0] != 0x20 or header[1] != 2:
        sock.close()
        raise MQTTError('unexpected answer to CONNECT')
    if header[3]:
        sock.close()
        raise Refused(header[3])
    return MQTTClient(sock)


def session(device):
    # One connection attempt of the Device: on success it is connected, subscribed, and its metadata and
    # state go out first, ahead of anything queued while away; on failure it retries after its backoff.
    c = device.config
    base = device.base
    try:
        # [P-1] the last will: $state offline, QoS 1, retained
        client = open_client(device.id, c['broker'], c['port'], device.id, device.password, c['keepalive'], c['ssl'],
                             c.get('ssl_params'), (base + '/$state', 'offline', 1, True), device.step_s, device._feed)
    except (MQTTError, OSError) as e:  # OSError: the name lookup
        device._retry_later()
        device.status('broker refused' if isinstance(e, Refused) else 'broker lost', str(e))
        return
    client.on_message = device._on_message
    device.client = client
    device.connected = True
    device.inflight = []
    device.backoff = c['backoff_min']
    device.last_contact = device.last_ping = port.ticks_ms()
    try:
        for topic in (base + '/+/+/set', base + '/+/+/+/set', 'cmnd/%s/OTA' % device.id, 'cmnd/%s/OTA/pending' % device.id, '%s/OTA' % device.id):
            client.pid += 1
            client._send(packet(0x82, struct.pack('!H', client.pid) + _string(topic) + b'\x01'))  # SUBSCRIBE, QoS 1
        head = [('%s/$%s' % (base, f), str(v), True) for f, v in device.meta.items()]
        head.append((base + '/$state', 'online', True))
        if c['keepalive'] > 0:
            # [P-20] promise the hub a message every keepalive period (an external broker hides our pings)
            head.append((base + '/$keepalive', '%d' % c['keepalive'], False))
        device.queue = head + device.queue
        device._flush()
    except MQTTError as e:
        device._lost(str(e))
        return
    device.status('broker ok', '%s:%s' % (c['broker'], c['port']))


def _wait(device, ms, pending=False):
    until = port.ticks_ms() + ms
    while device.connected and (device.ota_pending or not pending) and port.ticks_diff(until, port.ticks_ms()) > 0:
        device.step(50)


def sleep(device, seconds):
    # Device.sleep(): give pending commands a moment, stay awake while the hub has an OTA job for us (up
    # to pending_wait seconds), announce sleep, flush, leave cleanly (no last will), sleep.
    _wait(device, 500)
    _wait(device, device.config.get('pending_wait', 120) * 1000, True)
    if device.connected:
        device._enqueue(device.base + '/$state', 'sleeping %d' % seconds, True)
        _wait(device, 200)
        device._flush()
        device.client.disconnect()
        device.connected = False
    device.running = False
    port.deep_sleep(int(seconds * 1000))
