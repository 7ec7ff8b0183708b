# The ESP-NOW gateway's answers to a radio that loses, repeats and floods, in CPython with the PC port:
# the real Gateway (its real Device, never connected) and Peripheral, a scripted radio in place of the
# air. Run by test/unit/espnow-gateway.test.ts; one JSON line, a result per case (or its error), so a
# case that fails on one library version does not hide the others. docs/protocol.md [E-4]...[E-12].
import json
import os
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'device', 'micropython'))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'device', 'micropython', 'pc'))
import mqttkit_pc_port  # noqa: E402

mqttkit_pc_port.install(tempfile.mkdtemp())
from mqttkit import espnow, espnow_gateway, files  # noqa: E402
from mqttkit.espnow_frame import DATA, PAIR, PAIR_OK, REPLY, TIME, WAKE, build, derive_key, parse  # noqa: E402

GW_MAC = bytes.fromhex('02aa00000001')
P_MAC = bytes.fromhex('02bb00000001')
KEY = bytes(range(32))


class Radio:
    # What the gateway hears (inbox) and what it sent (sent); nothing is lost unless a case says so.
    def __init__(self):
        self.inbox = []
        self.sent = []

    def recv(self, timeout_ms=0):
        return self.inbox.pop(0) if self.inbox else (None, None)

    def send(self, mac, msg, sync=True):
        self.sent.append(bytes(msg))

    def add_peer(self, mac):
        pass

    def del_peer(self, mac):
        pass


def gateway(peer=True):
    radio = Radio()
    espnow_gateway._radio = lambda channel=0: (radio, GW_MAC)
    files.remove_file(espnow_gateway.PEERS_FILE)
    files.remove_file('last_exception.txt')
    g = espnow_gateway.Gateway({'broker': '192.0.2.1', 'device_id': 'gw-unit', 'queue': 1000, 'espnow_channel': 6})
    if peer:
        g.peers['soil-1'] = {'mac': P_MAC.hex(), 'key': KEY.hex(), 'txid': 100, 'saved': 100}
        g._index()
    return g, radio


def hear(g, frame, mac=P_MAC):
    g.radio.inbox.append((mac, frame))
    g.poll(0)


def published(g, since=0):
    # what the gateway queued for MQTT about its peripheral (its own topics are not asked)
    return [[t, p] for t, p, _r in g.device.queue[since:] if t.startswith('HomeKit/soil-1/')]


def data(txid, body, key=KEY):
    return build(key, P_MAC, DATA, txid, int(__import__('time').time()), json.dumps(body).encode())


def answers(radio, kind):
    return [parse(m) for m in radio.sent if parse(m)[0] == kind]


def pair_replay():
    # M1: a captured PAIR sent again while the window is open
    g, radio = gateway(peer=False)
    code = os.urandom(16)
    g._cmd_pair(None, 'soil-1 %s 300' % code.hex())
    nonce_p = os.urandom(16)
    pair = build(code, P_MAC, PAIR, 7, 0, nonce_p + b'soil-1')
    hear(g, pair)
    first = answers(radio, PAIR_OK)[-1]
    key = derive_key(code, P_MAC, GW_MAC, nonce_p, first[3][:16])  # what the peripheral keeps
    kept = g.peers['soil-1']['key'] == key.hex()
    hear(g, pair)  # the replay (or the peripheral's own retry)
    again = answers(radio, PAIR_OK)
    other = build(code, P_MAC, PAIR, 8, 0, os.urandom(16) + b'soil-1')  # another PAIR under the code
    hear(g, other)
    after_other = len(answers(radio, PAIR_OK))
    hear(g, build(key, P_MAC, WAKE, 4242, 0))
    time_answer = [f for f in answers(radio, TIME) if f[1] == 4242]
    return {
        'first_key_kept': kept,
        'key_after_replays': g.peers['soil-1']['key'] == key.hex(),
        'replay_answer_same': len(again) == 2 and again[1][3] == again[0][3],
        'other_answered': after_other > 2,
        'wake_answered': len(time_answer) == 1,
        'stats': g.stats,
        'window_open': g.pairing is not None,
    }


def lost_reply():
    # M2: the REPLY carrying a HomeKit write is lost; the peripheral sends the same DATA again
    g, radio = gateway()
    g._on_mqtt('HomeKit/soil-1/Switch/On/set', b'1', True)
    hear(g, build(KEY, P_MAC, WAKE, 1, 0))
    first = data(101, {'Switch/On': 0, 'TemperatureSensor/CurrentTemperature': 20.5, '$sleep': 60})
    hear(g, first)
    replies = answers(radio, REPLY)
    mark = len(g.device.queue)
    radio.sent.clear()  # ... lost on the air
    hear(g, first)  # the retry: the identical frame
    retry = answers(radio, REPLY)
    republished = published(g, mark)
    waiting_before_confirmation = g._cmd_stats(g.device, '')['espnow']['waiting']
    hear(g, data(102, {'Switch/On': 1, '$sleep': 60}))  # the confirmation, in the same wake
    return {
        'first_reply': json.loads(replies[0][3]) if replies else None,
        'retry_reply': json.loads(retry[0][3]) if retry else None,
        'retry_reply_txid': retry[0][1] if retry else None,
        'republished_on_retry': republished,
        'waiting_before_confirmation': waiting_before_confirmation,
        'waiting_after_confirmation': g._cmd_stats(g.device, '')['espnow']['waiting'],
        'state': [p for t, p in published(g) if t.endswith('/$state')],
        'switch': [p for t, p in published(g) if t.endswith('/Switch/On')],
        'stats': g.stats,
    }


def reply_never_arrives():
    # M2: every try lost; the peripheral sleeps; the write goes again at its next wake
    g, radio = gateway()
    g._on_mqtt('HomeKit/soil-1/Switch/On/set', b'1', True)
    hear(g, build(KEY, P_MAC, WAKE, 1, 0))
    hear(g, data(101, {'Switch/On': 0, '$sleep': 60}))
    for session in g.__dict__.get('sessions', {}).values():
        session['until'] = espnow_gateway.port.ticks_ms() - 1  # its retries are over: time moves on
    g.poll(0)
    state = [p for t, p in published(g) if t.endswith('/$state')]
    waiting = g._cmd_stats(g.device, '')['espnow']['waiting']
    radio.sent.clear()
    hear(g, build(KEY, P_MAC, WAKE, 2, 0))  # the next wake
    hear(g, data(102, {'Switch/On': 0, '$sleep': 60}))
    replies = answers(radio, REPLY)
    return {'state': state, 'waiting': waiting, 'next_reply': json.loads(replies[-1][3]) if replies else None}


def wake_retry():
    # a TIME lost: the peripheral's identical WAKE again is answered; an older WAKE is a replay
    g, radio = gateway()
    hear(g, build(KEY, P_MAC, WAKE, 11, 0))
    hear(g, build(KEY, P_MAC, WAKE, 12, 0))
    radio.sent.clear()
    hear(g, build(KEY, P_MAC, WAKE, 12, 0))
    retried = len(answers(radio, TIME))
    hear(g, build(KEY, P_MAC, WAKE, 11, 0))
    return {'retry_answered': retried, 'older_answered': len(answers(radio, TIME)) - retried, 'reused_txid': g.stats['reused_txid']}


def flood():
    # L1: a radio that never runs dry; poll() returns and the Device's step still runs
    g, _radio = gateway()

    class Endless(Radio):
        n = 0

        def recv(self, timeout_ms=0):
            self.n += 1
            if self.n > 3000:  # the end of this case, not of the gateway's loop
                return None, None
            return P_MAC, build(b'\x22' * 32, P_MAC, DATA, self.n, 0, b'{}')

    g.radio = Endless()
    g.poll(20)
    one_poll = g.stats['frames']
    steps = []

    def step(wait_ms=0):
        steps.append(g.stats['frames'])
        if len(steps) >= 5:
            g.device.running = False

    g.device.step = step
    g.run()
    return {'one_poll': one_poll, 'frames_before_each_step': steps}


def bad_body():
    # L2: a key holder's DATA that is not what the protocol says: nothing done, the write still waits
    out = {}
    cases = {
        'sleep_text': {'$sleep': '60s', 'TemperatureSensor/CurrentTemperature': 21},
        'surrogate': {'Switch/On': '\ud800'},
        'list_value': {'TemperatureSensor/CurrentTemperature': [1, 2]},
    }
    for name, body in cases.items():
        g, radio = gateway()
        g._on_mqtt('HomeKit/soil-1/Switch/On/set', b'1', True)
        hear(g, data(101, body))
        out[name] = {
            'malformed': g.stats['malformed'],
            'waiting': g._cmd_stats(g.device, '')['espnow']['waiting'],
            'published': published(g),
            'replies': len(answers(radio, REPLY)),
            'exception_file': files.read_file('last_exception.txt') is not None,
        }
        hear(g, data(101, {'TemperatureSensor/CurrentTemperature': 22}))  # the txid did not move on
        out[name]['same_txid_then'] = published(g)
    return out


def bad_keys():
    # L6, the gateway's side: keys outside the hub's grammar are dropped and counted, the rest relayed
    g, radio = gateway()
    hear(g, data(101, {
        'Switch/On/set': 1,
        'Switch/1/set': 1,
        'Fan/$x/On': 1,
        'Bad\u0000/On': 1,
        'Fan/0/On': 1,
        '$state': 'x',
        '$error': 'x',
        '$name': 'Soil 1',
        'Switch/2/On': True,
        'TemperatureSensor/CurrentTemperature': 21.5,
    }))
    return {'published': published(g), 'bad_key': g.stats.get('bad_key'), 'replies': len(answers(radio, REPLY))}


def peripheral_keys():
    # L6, the peripheral's side: a key the gateway would refuse is refused at publish(), by name
    radio = Radio()
    espnow._radio = lambda *args: (radio, P_MAC)
    node = espnow.Peripheral({'device_id': 'soil-1'})
    out = {}
    for name, args in (
        ('set_level', ('Switch', 'set', 1, 1)),
        ('nul', ('Switch\u0000', 'On', 1)),
        ('dollar', ('$state', 'On', 1)),
        ('index_zero', ('Switch', 'On', 1, 0.5)),
        ('good', ('Switch', 'On', 1, 2)),
    ):
        try:
            node.publish(*args)
            out[name] = 'accepted'
        except ValueError as e:
            out[name] = str(e)
    out['values'] = sorted(node.values)
    return out


def bounded():
    # the kept exchanges are bounded: twelve peripherals wake with a write each; at most 8 are kept, and
    # one dropped early is still shown sleeping
    g, radio = gateway(peer=False)
    for i in range(12):
        pid, mac, key = 'soil-%d' % i, bytes([2, 0xbb, 0, 0, 0, i]), bytes([i + 1]) * 32
        g.peers[pid] = {'mac': mac.hex(), 'key': key.hex(), 'txid': 100, 'saved': 100}
        g._index()
        g._on_mqtt('HomeKit/%s/Switch/On/set' % pid, b'1', True)
        hear(g, build(key, mac, WAKE, 1, 0), mac)
        hear(g, build(key, mac, DATA, 101, int(__import__('time').time()), b'{"$sleep": 60}'), mac)
    states = dict((t.split('/')[1], p) for t, p, _r in g.device.queue if t.endswith('/$state'))
    return {'kept': len(g.__dict__.get('sessions', {})), 'first_state': states.get('soil-0'), 'waiting': g._cmd_stats(g.device, '')['espnow']['waiting']}


def pair_retry():
    # [E-7] the gateway's first PAIR_OK is lost on the air: the peripheral's retry must be the same PAIR
    # (answered with the same PAIR_OK), not a second pairing, which the window refuses
    g, gw_radio = gateway(peer=False)
    code = os.urandom(16)
    g._cmd_pair(None, 'soil-1 %s 300' % code.hex())

    class Air:
        # the peripheral's radio: each frame it sends reaches the gateway at once; the first answer is lost
        def __init__(self):
            self.inbox = []
            self.lost = 0

        def send(self, mac, msg, sync=True):
            before = len(gw_radio.sent)
            hear(g, bytes(msg), P_MAC)
            for answer in gw_radio.sent[before:]:
                if self.lost == 0:
                    self.lost += 1
                    continue
                self.inbox.append((GW_MAC, answer))

        def recv(self, timeout_ms=0):
            return self.inbox.pop(0) if self.inbox else (None, None)

        def add_peer(self, *args, **kwargs):
            pass

        def del_peer(self, *args):
            pass

    air = Air()
    espnow._radio = lambda *args: (air, P_MAC)
    files.write_file(espnow.PAIR_FILE, json.dumps({'code': code.hex()}))
    files.remove_file(espnow.LINK_FILE)
    events = []
    node = espnow.Peripheral({'device_id': 'soil-1', 'espnow_timeout_ms': 20}, status=lambda e, d=None: events.append(e))
    link = node.link or {}
    return {
        'lost': air.lost,
        'paired': 'espnow paired' in events,
        'same_key': link.get('key') == g.peers.get('soil-1', {}).get('key'),
        'pair_refused': g.stats.get('pair_refused', 0),
    }


result = {}
for case in (bounded, pair_replay, pair_retry, lost_reply, reply_never_arrives, wake_retry, flood, bad_body, bad_keys, peripheral_keys):
    try:
        result[case.__name__] = case()
    except Exception:
        result[case.__name__] = {'error': traceback.format_exc()}
print(json.dumps(result))
