# The ESP-NOW frame of mqttkit (docs/protocol.md, "ESP-NOW frames", rules [E-1]...[E-9]): building and
# checking one frame, and the HMAC-SHA256 behind its tag. Pure functions, no radio: espnow.py's Gateway
# and Peripheral use them, and the tests feed them forged frames. MicroPython has hashlib.sha256 but no
# hmac module, so HMAC (RFC 2104) is written out here.
import hashlib
import struct

VERSION = 1
HEADER = 10  # version, type, txid (u32), timestamp (u32)
TAG = 16  # [E-2] HMAC-SHA256 cut to 128 bits
MAX_FRAME = 250  # ESP-NOW's MAX_DATA_LEN
MAX_PAYLOAD = MAX_FRAME - HEADER - TAG  # 224

# [E-3] frame types; uplink (peripheral -> gateway) below 0x80, downlink (gateway -> peripheral) above
PAIR = 0x01
WAKE = 0x02
DATA = 0x03
PAIR_OK = 0x81
TIME = 0x82
REPLY = 0x83
UPLINK = (PAIR, WAKE, DATA)
DOWNLINK = (PAIR_OK, TIME, REPLY)

BROADCAST = b'\xff' * 6


def hmac_sha256(key, message):
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + bytes(64 - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(message)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def same(a, b):
    # Constant-time comparison: how many tag bytes were right must not show in the time taken.
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


def tag(key, peer, head_and_payload):
    # [E-2] the tag covers the peripheral's address (sender of an uplink, receiver of a downlink), the
    # header (type, transaction id, gateway-clock timestamp) and the payload
    return hmac_sha256(key, bytes(peer) + bytes(head_and_payload))[:TAG]


def build(key, peer, kind, txid, ts, payload=b''):
    if len(payload) > MAX_PAYLOAD:
        raise ValueError('ESP-NOW payload of %d bytes is over the limit of %d' % (len(payload), MAX_PAYLOAD))
    body = struct.pack('>BBII', VERSION, kind, txid & 0xFFFFFFFF, ts & 0xFFFFFFFF) + payload
    return body + tag(key, peer, body)


def parse(frame):
    # [E-1] -> (type, txid, timestamp, payload, tag), or None for a frame that is not ours or malformed.
    if len(frame) < HEADER + TAG or len(frame) > MAX_FRAME or frame[0] != VERSION:
        return None
    _version, kind, txid, ts = struct.unpack('>BBII', bytes(frame[:HEADER]))
    if kind not in UPLINK and kind not in DOWNLINK:
        return None
    return kind, txid, ts, bytes(frame[HEADER:-TAG]), bytes(frame[-TAG:])


def verify(key, peer, frame):
    # [E-2] True when the frame's tag is the one `key` gives for `peer`.
    return same(tag(key, peer, bytes(frame[:-TAG])), bytes(frame[-TAG:]))


def derive_key(code, peripheral_mac, gateway_mac, nonce_p, nonce_g):
    # [E-7] the pairing's key: both sides compute it from the one-time code and both nonces; the key
    # itself never goes over the air
    return hmac_sha256(code, b'mqttkit-espnow-key' + bytes(peripheral_mac) + bytes(gateway_mac) + nonce_p + nonce_g)
