# ESP-NOW for mqttkit (docs/device.md, "ESP-NOW peripherals"; frames: docs/protocol.md [E-1]...[E-9]).
# Gateway (espnow_gateway.py, loaded only by a gateway): a mains-powered ESP32 on Wi-Fi + MQTT (a Device) that relays its paired peripherals to the
# hub, each as its own device HomeKit/<peripheral-id>/..., and holds HomeKit writes for them until their
# next send. Peripheral: a battery node that wakes, sends its values, takes the writes waiting for it in
# the gateway's reply, confirms them and deep-sleeps. Every frame carries an HMAC-SHA256 tag under the
# peripheral's own key (espnow_frame.py); the key comes from a one-time pairing code that reaches the
# peripheral over USB and the gateway over MQTT, never over the air.
import json
import os
import struct
from binascii import hexlify, unhexlify

from . import files, port
from .espnow_frame import BROADCAST, DATA, MAX_PAYLOAD, PAIR, PAIR_OK, REPLY, TIME, WAKE, build, derive_key, parse, verify

LINK_FILE = 'espnow.json'  # peripheral: its gateway's address, its key, the channel
PAIR_FILE = 'espnow_pair.json'  # peripheral: the one-time pairing code, copied over USB [E-7]


def _radio(channel=0, peripheral=False):
    # The Wi-Fi interface must be active for ESP-NOW; a peripheral sits on its gateway's channel. Only
    # calls both ports have (docs/device.md, "ESP-NOW on an ESP8266"): an ESP8266's espnow has no
    # config() getter, stats(), get_peers(), peers_table, keyword add_peer(), send(None, ...).
    import espnow
    try:
        import network
        sta = network.WLAN(network.STA_IF)
        sta.active(True)
        if peripheral:
            sta.disconnect()  # an ESP8266 re-joins its last access point by itself, moving the channel
        if channel:
            try:
                sta.config(channel=channel)
            except (ValueError, OSError):
                # ESP8266: `channel` is an access-point setting there (one radio, one channel for both)
                ap = network.WLAN(network.AP_IF)
                ap.active(True)
                ap.config(channel=channel, hidden=True)
        mac = bytes(sta.config('mac'))
    except ImportError:
        mac = None  # on a PC: the simulated medium gives the address (pc/espnow.py)
    e = espnow.ESPNow()
    e.active(True)
    if mac is None:
        mac = bytes(getattr(e, 'pc_mac'))
    _add_peer(e, BROADCAST)
    return e, mac


def _channel():
    # The Wi-Fi channel the gateway's access point gave it: its peripherals must use the same.
    try:
        import network
        return int(network.WLAN(network.STA_IF).config('channel'))
    except (ImportError, ValueError, OSError):
        return 0


def _add_peer(e, mac):
    try:
        e.add_peer(mac)
    except OSError:
        pass  # already a peer (ESP_ERR_ESPNOW_EXIST)


def _hex(b):
    return hexlify(b).decode()


def _name_ok(name):
    # [P-4] a service or characteristic name: a letter, then letters, digits and _; at most 64
    return 1 <= len(name) <= 64 and all(c == '_' or 'a' <= c <= 'z' or 'A' <= c <= 'Z' or ('0' <= c <= '9' and i) for i, c in enumerate(name))


def _key_ok(key):
    # [E-11] a value's key is a characteristic path under HomeKit/<id>/, the hub's grammar ([P-4], [P-8]):
    # Service[/index 1-99]/Characteristic. Never a write (/set: the gateway would take it for a HomeKit
    # write), no $-level, wildcard or control character (a broker drops a client that publishes one).
    levels = key.split('/') if isinstance(key, str) else ()
    if len(levels) == 3:
        index = levels[1]
        if not (1 <= len(index) <= 2 and index[0] in '123456789' and index[-1] in '0123456789'):
            return False
    elif len(levels) != 2:
        return False
    return _name_ok(levels[0]) and _name_ok(levels[-1]) and levels[-1] != 'set'


def Gateway(config=None, status=None, name='ESP-NOW gateway', model=None, firmware=None):
    # The gateway's code is its own module (espnow_gateway.py): a peripheral never loads it.
    from .espnow_gateway import Gateway
    return Gateway(config, status, name, model, firmware)


class Peripheral:
    # A battery node. config (config.json): device_id (required: its HomeKit/<id>), espnow_channel,
    # espnow_timeout_ms (how long it waits for each answer, default 300), espnow_tries (3).
    def __init__(self, config=None, status=None):
        c = {'espnow_channel': 0, 'espnow_timeout_ms': 300, 'espnow_tries': 3}
        stored = files.read_file('config.json')
        if stored:
            c.update(json.loads(stored))
        if config:
            c.update(config)
        self.config = c
        self.id = str(c.get('device_id') or '')
        if not 1 <= len(self.id) <= 64 or [ch for ch in self.id if not (ch.isalpha() or ch.isdigit() or ch in '_-') or ord(ch) > 127]:
            raise ValueError('a peripheral needs its device_id (1-64 letters, digits, _ or -) in config.json, not %r' % self.id)
        self.status = status or (lambda event, detail=None: None)
        self.values = {}
        self.handlers = {}
        self.stats = {'ignored': 0}
        link = files.read_file(LINK_FILE)
        self.link = json.loads(link) if link else None
        self.radio, self.mac = _radio((self.link or {}).get('channel') or c['espnow_channel'], True)
        if self.link is None:
            self._pair()
        if self.link:
            self.gateway = unhexlify(self.link['gateway'])
            self.key = unhexlify(self.link['key'])
            _add_peer(self.radio, self.gateway)

    @staticmethod
    def _path(service, characteristic, index):
        path = '%s%s/%s' % (service, '/%d' % index if index else '', characteristic)
        if not _key_ok(path):  # [E-11] refused here, not dropped silently at the gateway
            raise ValueError('%r is not a characteristic path: Service[/index 1-99]/Characteristic, names of letters, digits and _ (a letter first, at most 64), e.g. TemperatureSensor/CurrentTemperature' % path)
        return path

    def publish(self, service, characteristic, value, index=None):
        self.values[self._path(service, characteristic, index)] = int(value) if value is True or value is False else value

    def set_meta(self, **fields):
        for field, value in fields.items():
            self.values['$' + field] = value

    def on_set(self, service, characteristic, callback, index=None):
        # callback(value) runs for each HomeKit write, on the peripheral's next send; what it returns is
        # sent back as the confirmed state (None confirms the value as written).
        self.handlers[self._path(service, characteristic, index)] = callback

    def sleep(self, seconds):
        self.send(seconds)
        port.deep_sleep(int(seconds * 1000))

    def send(self, sleep_s=None):
        # WAKE -> TIME, then DATA -> REPLY (with the writes waiting at the gateway), and once more with
        # their confirmations. True when the gateway answered.
        if not self.link:
            self.status('espnow not paired', 'put %s on the board (mqttkit espnow pair)' % PAIR_FILE)
            return False
        nonce = struct.unpack('>I', os.urandom(4))[0]
        answer = self._exchange(WAKE, nonce, 0, b'', TIME)
        if answer is None or len(answer[1]) != 4:
            self.status('espnow no gateway')
            return False
        clock, started = answer[0], port.ticks_ms()
        txid = struct.unpack('>I', answer[1])[0]
        for _round in range(3):
            body = dict(self.values)
            if sleep_s is not None:
                body['$sleep'] = int(sleep_s)
            payload = json.dumps(body).encode()
            if len(payload) > MAX_PAYLOAD:
                raise ValueError('%d bytes of values: over the ESP-NOW limit of %d; send fewer per wake' % (len(payload), MAX_PAYLOAD))
            txid += 1
            reply = self._exchange(DATA, txid, clock + port.ticks_diff(port.ticks_ms(), started) // 1000, payload, REPLY)
            if reply is None:
                self.status('espnow no reply')
                return False
            self.values = {}
            writes = json.loads(reply[1])
            if not writes:
                self.status('espnow sent')
                return True
            for key, text in writes.items():
                self.values[key] = self._apply(key, text)
        return True

    def _apply(self, key, text):
        value = text
        for kind in (int, float):
            try:
                value = kind(text)
                break
            except ValueError:
                pass
        callback = self.handlers.get(key)
        self.status('espnow write', '%s=%s' % (key, text))
        if callback is None:
            return value
        try:
            result = callback(value)
        except Exception as e:
            files.record_exception(e)
            return value
        return value if result is None else (int(result) if result is True or result is False else result)

    def _exchange(self, kind, txid, ts, payload, answer_kind):
        # Sends a frame and waits for the gateway's answer to it: the right type, echoing our txid,
        # tagged under our key for our address. Anything else is ignored (counted).
        frame = build(self.key, self.mac, kind, txid, ts, payload)
        for _try in range(self.config['espnow_tries']):
            self.radio.send(self.gateway, frame, False)
            got = self._await(self.gateway, self.key, answer_kind, txid)
            if got is not None:
                return got
        return None

    def _await(self, sender, key, kind, txid):
        until = port.ticks_ms() + self.config['espnow_timeout_ms']
        while True:
            left = port.ticks_diff(until, port.ticks_ms())
            if left <= 0:
                return None
            mac, frame = self.radio.recv(left)
            if mac is None or frame is None:
                return None
            f = parse(frame)
            if f is None or f[0] != kind or f[1] != txid or (sender is not None and bytes(mac) != sender) or not verify(key, self.mac, frame):
                self.stats['ignored'] += 1
                continue
            return f[2], f[3], bytes(mac)

    def _pair(self):
        # [E-7] the one-time exchange: PAIR (a fresh nonce, our id) and PAIR_OK (the gateway's nonce), both
        # tagged under the code; each side derives the key from the code and both nonces
        text = files.read_file(PAIR_FILE)
        if not text:
            self.status('espnow not paired', 'no %s' % PAIR_FILE)
            return
        code = unhexlify(json.loads(text)['code'])
        # [E-7] a retry is the same PAIR (the gateway answers it with the same PAIR_OK); a new nonce
        # would be a second pairing, which the window refuses
        nonce = os.urandom(16)
        txid = struct.unpack('>I', os.urandom(4))[0]
        for _try in range(self.config['espnow_tries'] * 3):
            self.radio.send(BROADCAST, build(code, self.mac, PAIR, txid, 0, nonce + self.id.encode()), False)
            got = self._await(None, code, PAIR_OK, txid)
            if got is None or len(got[1]) < 17:
                continue
            _ts, answer, gateway = got
            key = derive_key(code, self.mac, gateway, nonce, answer[:16])
            self.link = {'gateway': _hex(gateway), 'key': _hex(key), 'channel': answer[16]}
            files.write_file(LINK_FILE, json.dumps(self.link))
            files.remove_file(PAIR_FILE)  # one time: the code is worth nothing now
            self.status('espnow paired', _hex(gateway))
            return
        self.status('espnow not paired', 'no gateway answered (is its pairing window open?)')
