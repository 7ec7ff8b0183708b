# The ESP-NOW gateway (mqttkit.espnow.Gateway; docs/device.md, "ESP-NOW peripherals"; frames:
# docs/protocol.md [E-1]...[E-12]): a Device on Wi-Fi + MQTT that relays its paired peripherals to the
# hub, each as its own device HomeKit/<peripheral-id>/..., holds HomeKit writes for them until their next
# send, and refuses every frame that is not fresh, authentic and from a paired address (counted in stats).
import json
import os
import struct
import time
from binascii import unhexlify

from . import files, port
from .espnow import _channel, _hex, _key_ok, _radio
from .espnow_frame import DATA, MAX_PAYLOAD, PAIR, PAIR_OK, REPLY, TIME, WAKE, build, derive_key, parse, verify

WINDOW_S = 30  # [E-5] how far a frame's timestamp may be from the gateway's clock
TXID_STRIDE = 64  # [E-6] the gateway saves a peripheral's last transaction id every this many frames
POLL_MAX = 16  # [E-4] frames handled per poll(): a flood on the air must not starve MQTT (its keepalive)
SESSION_MS = 10000  # [E-12] how long the last answer to a peripheral is kept for its retries
SESSIONS_MAX = 8  # [E-12] at most this many kept (the oldest goes first): bounded memory
SLEEP_MAX = 31 * 24 * 3600  # [E-8] a "$sleep" above a month is a bug, not a plan
META = ('$name', '$manufacturer', '$model', '$firmware')  # [E-8] the metadata of protocol.md 3.2 a peripheral may set
PEERS_FILE = 'espnow_peers.json'  # peripheral id -> address, key, last transaction id


class Gateway:
    # Relays paired peripherals. config: as a Device's (config.json), plus `espnow_channel` (0: the
    # access point's). Call run(); it runs the Device's loop and the radio together.
    def __init__(self, config=None, status=None, name='ESP-NOW gateway', model=None, firmware=None):
        from .device import Device
        self.device = d = Device(config, status, name=name, model=model, firmware=firmware)
        self.status = d.status
        self.radio, self.mac = _radio()
        self.peers = {}  # peripheral id -> {'mac': hex, 'key': hex, 'txid': last accepted, 'saved': persisted}
        stored = files.read_file(PEERS_FILE)
        if stored:
            self.peers = json.loads(stored)
        for peer in self.peers.values():
            # [E-6] after a restart, skip past any id we may have accepted but not saved
            peer['txid'] = peer['saved'] = peer['txid'] + TXID_STRIDE
        self._index()
        if self.peers:
            self._save()
        self.pairing = None  # {'id', 'code', 'until'}: the window the hub opened [E-7]
        self.pending = {}  # peripheral id -> {'Service/Characteristic': text}: writes waiting for its next send
        self.wakes = {}  # peripheral id -> its last WAKE nonces [E-5]
        # [E-12] peripheral id -> its wake's exchange: 'wake' (last WAKE nonce), 'data' (the last DATA's
        # txid and tag), 'reply' (the REPLY sent to it), 'sent' (the writes that REPLY carried, still
        # pending until the peripheral's next DATA confirms them), 'sleep' (its "$sleep" while `sleeping`
        # is not yet published), 'until' (ticks: dropped then)
        self.sessions = {}
        self.subscribed = False
        self.stats = {'frames': 0, 'relayed': 0, 'unpaired': 0, 'bad_tag': 0, 'stale': 0, 'reused_txid': 0, 'malformed': 0, 'repeated': 0, 'bad_key': 0, 'pair_refused': 0}
        self._device_message = d._on_message
        d._on_message = self._on_mqtt  # connect.py hands the client this (an instance attribute shadows the method)
        d.commands['espnow_pair'] = self._cmd_pair
        d.commands['espnow_unpair'] = self._cmd_unpair
        d.commands['stats'] = self._cmd_stats

    # --- the loop -----------------------------------------------------------------------------------
    def run(self):
        d = self.device
        d.running = True
        while d.running:
            d.step(10)
            if d.connected and not self.subscribed:
                self.subscribed = True
                for pid in self.peers:
                    self._subscribe(pid)
            elif not d.connected:
                self.subscribed = False
            self.poll(20)

    def poll(self, wait_ms=0):
        # Handles the frames that arrived, waiting at most wait_ms for the first; at most POLL_MAX, so the
        # loop gets back to MQTT however busy the air is [E-4].
        for _n in range(POLL_MAX):
            mac, frame = self.radio.recv(wait_ms)
            if mac is None or frame is None:
                break
            wait_ms = 0
            try:
                self._frame(bytes(mac), bytes(frame))
            except Exception as e:  # one bad frame must not stop the relay
                files.record_exception(e)
                self.stats['malformed'] += 1
        self._expire()

    # --- MQTT side ----------------------------------------------------------------------------------
    def _subscribe(self, pid):
        from .mqtt import _string, packet
        client = self.device.client
        for topic in ('HomeKit/%s/+/+/set' % pid, 'HomeKit/%s/+/+/+/set' % pid):
            client.pid += 1
            client._send(packet(0x82, struct.pack('!H', client.pid) + _string(topic) + b'\x01'))

    def _on_mqtt(self, topic, payload, retained=False):
        parts = topic.split('/')
        if len(parts) >= 5 and parts[0] == 'HomeKit' and parts[-1] == 'set' and parts[1] in self.peers:
            # [E-8] a HomeKit write for a peripheral waits here for its next send; an empty one is the hub
            # clearing its retained copy (settled)
            key = '/'.join(parts[2:-1])
            text = payload.decode('utf-8') if isinstance(payload, (bytes, bytearray)) else payload
            waiting = self.pending.setdefault(parts[1], {})
            if text:
                waiting[key] = text
            else:
                waiting.pop(key, None)
            return
        self._device_message(topic, payload, retained)

    def _publish(self, pid, sub, value, retain=False):
        self.device._enqueue('HomeKit/%s/%s' % (pid, sub), str(value), retain)

    # --- the radio ----------------------------------------------------------------------------------
    def _now(self):
        return int(time.time())

    def _drop(self, why):
        self.stats[why] += 1
        return None

    def _frame(self, mac, frame):
        self.stats['frames'] += 1
        f = parse(frame)
        if f is None:
            return self._drop('malformed')
        kind, txid, ts, payload, tag_ = f
        if kind == PAIR:
            return self._pair_request(mac, frame, txid, payload)
        if kind not in (WAKE, DATA):
            return self._drop('malformed')  # a downlink type sent to us: a reflection
        pid = self.by_mac.get(mac)
        if pid is None:
            return self._drop('unpaired')  # [E-4]
        peer = self.peers[pid]
        key = unhexlify(peer['key'])
        if not verify(key, mac, frame):
            return self._drop('bad_tag')  # [E-2]
        if self.pairing and self.pairing['id'] == pid:
            self.pairing = None  # the new key works: the window closes [E-7]
        now = self._now()
        session = self.sessions.get(pid)
        if kind == WAKE:
            if session and session.get('wake') == txid:
                # [E-12] the peripheral's retry (our TIME was lost): answered again
                self.stats['repeated'] += 1
                return self._send(key, mac, TIME, txid, now, struct.pack('>I', peer['txid']))
            seen = self.wakes.setdefault(pid, [])
            if txid in seen:
                return self._drop('reused_txid')  # [E-5] a replayed WAKE
            seen.append(txid)
            del seen[:-8]
            # a new wake: writes a REPLY of an earlier one carried, unconfirmed, go again [E-12]
            session = self._session(pid)
            session['wake'] = txid
            session.pop('sent', None)
            session.pop('sleep', None)
            # [E-5] the gateway's time, and the last transaction id it accepted from this peripheral
            self._send(key, mac, TIME, txid, now, struct.pack('>I', peer['txid']))
            return None
        if ts > now + WINDOW_S or ts < now - WINDOW_S:
            return self._drop('stale')  # [E-5]
        if txid <= peer['txid']:
            if session and session.get('data') == (txid, tag_) and 'reply' in session:
                # [E-12] the peripheral's retry of the DATA we answered (our REPLY was lost): the same
                # REPLY again, nothing published again
                self.stats['repeated'] += 1
                self._unicast(mac, session['reply'])
                return None
            return self._drop('reused_txid')  # [E-6] replayed or reordered
        body = self._body(payload)  # [E-8] checked whole before anything is done with it
        if body is None:
            return self._drop('malformed')
        peer['txid'] = txid
        if txid - peer['saved'] >= TXID_STRIDE:
            peer['saved'] = txid
            self._save()
        session = self._session(pid)
        waiting = self.pending.get(pid, {})
        sent = session.pop('sent', None)
        if sent:
            # [E-12] a DATA after the REPLY that carried writes, in the same wake: the peripheral has them.
            # A newer write for the same characteristic (another text) still waits.
            for k in sent:
                if waiting.get(k) == sent[k]:
                    del waiting[k]
        if not waiting:
            self.pending.pop(pid, None)
        # [E-8] the writes waiting for it go with the reply (they stay pending until confirmed [E-12]); a
        # value it reports for a characteristic being written is from before the write, so it is not relayed
        answer = {}
        for k in waiting:
            answer[k] = waiting[k]
            if len(json.dumps(answer)) > MAX_PAYLOAD:
                del answer[k]  # the rest goes with its next reply
                break
        self._publish(pid, '$state', 'online', True)  # [E-5] awake: its writes' confirmation time starts
        sleep = body.pop('$sleep', None)
        for key_, value in body.items():
            if key_[:1] == '$':
                self._publish(pid, key_, value, True)
            elif key_ not in waiting:
                self._publish(pid, key_, value)
        self.stats['relayed'] += 1
        reply = build(key, mac, REPLY, txid, now, json.dumps(answer).encode())
        session['data'] = (txid, tag_)
        session['reply'] = reply
        session['until'] = port.ticks_ms() + SESSION_MS
        self._unicast(mac, reply)  # [E-3]
        session.pop('sleep', None)
        if answer:
            session['sent'] = answer
            if sleep is not None:
                session['sleep'] = sleep  # published when it confirms, or when its session ends [E-12]
        elif sleep is not None:
            self._publish(pid, '$state', 'sleeping %d' % sleep, True)  # [E-8] until its next send
        return None

    def _body(self, payload):
        # [E-8], [E-11] a DATA's JSON object, checked before any side effect: None when it is malformed (not
        # an object, "$sleep" not whole seconds, a value not a number, true/false or text). A key outside
        # the grammar is dropped and counted (bad_key), the rest relayed. Booleans become 1/0, text as is.
        try:
            body = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        good = {}
        for k, v in body.items():
            if k == '$sleep':
                if not isinstance(v, int) or v is True or v is False or not 0 <= v <= SLEEP_MAX:
                    return None
                good[k] = v
                continue
            if v is True or v is False:
                v = int(v)
            elif isinstance(v, str):
                try:
                    v.encode('utf-8')  # a lone surrogate (\ud800) will not encode
                except UnicodeError:
                    return None
            elif not isinstance(v, (int, float)):
                return None
            if k in META or _key_ok(k):
                good[k] = str(v)
            else:
                self.stats['bad_key'] += 1
        return good

    def _session(self, pid):
        s = self.sessions.get(pid)
        if s is None:
            if len(self.sessions) >= SESSIONS_MAX:
                self._end(min(self.sessions, key=lambda p: port.ticks_diff(self.sessions[p]['until'], port.ticks_ms())))
            s = self.sessions[pid] = {}
        s['until'] = port.ticks_ms() + SESSION_MS
        return s

    def _expire(self):
        now = port.ticks_ms()
        for pid in [p for p, s in self.sessions.items() if port.ticks_diff(s['until'], now) <= 0]:
            self._end(pid)

    def _end(self, pid):
        # [E-12] a session ends: a peripheral that never confirmed its writes went to sleep anyway
        s = self.sessions.pop(pid)
        if 'sleep' in s and pid in self.peers:
            self._publish(pid, '$state', 'sleeping %d' % s['sleep'], True)

    def _send(self, key, mac, kind, txid, ts, payload):
        # [E-3] downlinks go to the peripheral's own address (an ESP8266 does not receive broadcasts),
        # through a peer-table entry held only for the send: ESP-NOW holds 20 peers, a gateway has more
        # peripherals. sync: the radio has sent it (or given up) before the entry goes.
        self._unicast(mac, build(key, mac, kind, txid, ts, payload))

    def _unicast(self, mac, frame):
        try:
            self.radio.add_peer(mac)
        except OSError:
            pass  # already a peer
        try:
            self.radio.send(mac, frame, True)
        finally:
            try:
                self.radio.del_peer(mac)
            except OSError:
                pass

    def _pair_request(self, mac, frame, txid, payload):
        w = self.pairing
        if w is None or port.ticks_diff(w['until'], port.ticks_ms()) < 0:
            self.pairing = None
            return self._drop('unpaired')  # no window open [E-7]
        if payload[16:] != w['id'].encode() or len(payload) < 17 or not verify(w['code'], mac, frame):
            return self._drop('bad_tag')
        channel = bytes([(self.device.config.get('espnow_channel') or _channel()) & 0xFF])
        if 'nonce_p' in w:
            # [E-7] one pairing per window: the same PAIR again (the peripheral's retry, or a replay of it)
            # gets the same PAIR_OK and no new key; any other is refused, so a replayed PAIR cannot replace
            # the key the peripheral already holds
            if w['nonce_p'] != payload[:16] or w['mac'] != mac:
                return self._drop('pair_refused')
            self.stats['repeated'] += 1
            self._send(w['code'], mac, PAIR_OK, txid, self._now(), w['nonce_g'] + channel)
            return None
        nonce_g = os.urandom(16)
        key = derive_key(w['code'], mac, self.mac, payload[:16], nonce_g)
        w['nonce_p'], w['nonce_g'], w['mac'] = payload[:16], nonce_g, mac
        old = self.peers.get(w['id'])
        self.peers[w['id']] = {'mac': _hex(mac), 'key': _hex(key), 'txid': old['txid'] if old else 0, 'saved': old['saved'] if old else 0}
        self._index()
        self._save()
        self._send(w['code'], mac, PAIR_OK, txid, self._now(), nonce_g + channel)
        if self.device.connected:
            self._subscribe(w['id'])
        self.device.log('espnow: %s paired (%s)' % (w['id'], _hex(mac)))
        self.status('espnow paired', w['id'])
        return None

    def _index(self):
        self.by_mac = dict((unhexlify(p['mac']), pid) for pid, p in self.peers.items())

    def _save(self):
        files.write_file(PEERS_FILE, json.dumps(self.peers))

    # --- commands (cmnd/<gateway>/OTA) --------------------------------------------------------------
    def _cmd_pair(self, _device, argument):
        # [E-7] 'espnow_pair <peripheral-id> <code, 32 hex digits> [window seconds]': the answer never
        # repeats the code
        words = argument.split()
        if len(words) < 2 or len(words[1]) != 32:
            return 'usage: espnow_pair <peripheral-id> <32 hex digit code> [seconds]'
        seconds = int(words[2]) if len(words) > 2 else 300
        self.pairing = {'id': words[0], 'code': unhexlify(words[1]), 'until': port.ticks_ms() + seconds * 1000}
        return 'espnow: pairing window open for %s for %d s' % (words[0], seconds)

    def _cmd_unpair(self, _device, argument):
        pid = argument.strip()
        if self.pairing and self.pairing['id'] == pid:
            self.pairing = None
        if self.peers.pop(pid, None) is None:
            return 'espnow: %s is not paired' % pid
        self.pending.pop(pid, None)
        self.sessions.pop(pid, None)
        self.wakes.pop(pid, None)
        self._index()
        self._save()
        return 'espnow: %s unpaired, its key forgotten' % pid

    def _cmd_stats(self, device, argument):
        from . import commands
        answer = commands.stats(device, argument)
        answer['espnow'] = dict(self.stats, peripherals=sorted(self.peers), waiting=sum(len(w) for w in self.pending.values()))
        return answer
