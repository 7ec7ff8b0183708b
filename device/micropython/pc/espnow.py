# The PC stand-in for MicroPython's `espnow` module: the same ESPNow API (active, add_peer, del_peer,
# get_peers, send, recv, irecv, any, stats) over a simulated medium, a UDP relay on loopback that plays
# the air (the tests run it and can listen, replay and forge there, as an attacker with a radio can).
# Never installed on a board. MQTTKIT_ESPNOW_AIR=<host>:<port> names the relay, MQTTKIT_ESPNOW_MAC
# (12 hex digits) this radio's address. MQTTKIT_ESPNOW_CHIP=esp8266 plays an ESP8266's smaller espnow
# (MicroPython 1.27, ports/esp8266/modespnow.c and modules/espnow.py): no stats(), get_peer(),
# get_peers(), peer_count(), mod_peer(), irq(), peers_table, config() getter, keyword add_peer() or
# send(None, ...)/send(msg) (each raises here as it would fail on the board), and broadcasts sent by
# others are not received (docs: "Broadcast and Multicast").
# Datagrams: to the relay  <source address 6><destination address 6><message>
#            from the relay <source address 6><destination address 6><message>
import os
import socket

MAX_DATA_LEN = 250
ADDR_LEN = 6
KEY_LEN = 16
MAX_TOTAL_PEER_NUM = 20
MAX_ENCRYPT_PEER_NUM = 6
_REGISTER = b'\x00' * 6  # a datagram to this address only tells the relay where we are
_BROADCAST = b'\xff' * 6
ESP8266_LACKS = ('stats', 'get_peer', 'get_peers', 'peer_count', 'mod_peer', 'irq', 'peers_table')


class ESPNow:
    _instance = None

    def __getattribute__(self, name):
        # An ESP8266's ESPNow has none of these: a call the board lacks fails in the test too.
        if name in ESP8266_LACKS and object.__getattribute__(self, 'chip') == 'esp8266':
            raise AttributeError("'ESPNow' object has no attribute '%s' (not on an ESP8266)" % name)
        return object.__getattribute__(self, name)

    def __new__(cls):
        # a singleton, as on a board
        if cls._instance is None:
            cls._instance = object.__new__(cls)
            cls._instance._init()
        return cls._instance

    def _init(self):
        host, _, number = os.environ.get('MQTTKIT_ESPNOW_AIR', '127.0.0.1:0').rpartition(':')
        self.air = (host, int(number))
        self.pc_mac = bytes.fromhex(os.environ.get('MQTTKIT_ESPNOW_MAC', '02' + os.urandom(5).hex()))
        self.chip = os.environ.get('MQTTKIT_ESPNOW_CHIP', 'esp32')
        self.peers_table = {}
        self.sock = None
        self.peers = {}
        self.counts = [0, 0, 0, 0, 0]  # tx_pkts, tx_responses, tx_failures, rx_packets, rx_dropped

    def active(self, flag=None):
        if flag is None:
            return self.sock is not None
        if flag and self.sock is None:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(('127.0.0.1', 0))
            self.sock.sendto(self.pc_mac + _REGISTER, self.air)
        elif not flag and self.sock is not None:
            self.sock.close()
            self.sock = None
        return self.sock is not None

    def config(self, *args, **kwargs):
        if self.chip == 'esp8266' and (args or set(kwargs) - {'rxbuf', 'timeout_ms'}):
            raise TypeError('ESP8266: config() takes only rxbuf= and timeout_ms= (no getter)')
        return None

    def add_peer(self, mac, *args, **kwargs):
        # ESP32: add_peer(mac, lmk=None, channel=0, ifidx=0, encrypt=False), positional or keyword;
        # ESP8266: add_peer(mac[, lmk[, channel]]), positional only, lmk of 16 bytes when given
        if self.chip == 'esp8266' and (kwargs or len(args) > 2 or (args and (args[0] is None or len(args[0]) != KEY_LEN))):
            raise TypeError('ESP8266: add_peer(mac[, lmk[, channel]]) takes positional arguments only, lmk of 16 bytes')
        names = ('lmk', 'channel', 'ifidx', 'encrypt')
        if len(args) > len(names) or set(kwargs) - set(names):
            raise TypeError('add_peer(mac, lmk, channel, ifidx, encrypt)')
        given = dict(zip(names, args), **kwargs)
        lmk, channel, ifidx, encrypt = given.get('lmk'), given.get('channel', 0), given.get('ifidx', 0), given.get('encrypt', False)
        mac = bytes(mac)
        if len(mac) != ADDR_LEN:
            raise ValueError('invalid MAC address')
        if mac in self.peers:
            raise OSError(-12395, 'ESP_ERR_ESPNOW_EXIST')
        if len(self.peers) >= MAX_TOTAL_PEER_NUM:
            raise OSError(-12394, 'ESP_ERR_ESPNOW_FULL')
        self.peers[mac] = (lmk, channel, ifidx, encrypt)

    def del_peer(self, mac):
        if self.peers.pop(bytes(mac), None) is None:
            raise OSError(-12393, 'ESP_ERR_ESPNOW_NOT_FOUND')

    def get_peers(self):
        return tuple((mac,) + v for mac, v in self.peers.items())

    def peer_count(self):
        return (len(self.peers), 0)

    def send(self, mac, msg=None, sync=True):
        if self.chip == 'esp8266' and (msg is None or mac is None):
            raise TypeError('ESP8266: send(mac, msg[, sync]) needs the peer address')
        if msg is None:
            mac, msg = None, mac
        if self.sock is None:
            raise OSError(-12396, 'ESP_ERR_ESPNOW_NOT_INIT')
        if isinstance(msg, str):
            msg = msg.encode()
        if len(msg) > MAX_DATA_LEN:
            raise ValueError('msg too long')
        targets = [bytes(mac)] if mac is not None else list(self.peers)
        for target in targets:
            if target not in self.peers:
                raise OSError(-12393, 'ESP_ERR_ESPNOW_NOT_FOUND')
            self.sock.sendto(self.pc_mac + target + bytes(msg), self.air)
            self.counts[0] += 1
        return True

    def any(self):
        return self._wait(0)

    def _wait(self, timeout_ms):
        import select
        if self.sock is None:
            return False
        ready, _, _ = select.select([self.sock], [], [], None if timeout_ms is not None and timeout_ms < 0 else (timeout_ms or 0) / 1000)
        return bool(ready)

    def recv(self, timeout_ms=None):
        import time
        if timeout_ms is None:
            timeout_ms = 300000
        until = time.monotonic() + timeout_ms / 1000
        while self._wait(timeout_ms):
            data = self.sock.recv(MAX_DATA_LEN + 2 * ADDR_LEN + 64)
            if timeout_ms >= 0:
                timeout_ms = max(0, int((until - time.monotonic()) * 1000))  # what is left of the wait
            if len(data) < 2 * ADDR_LEN + 1 or len(data) > MAX_DATA_LEN + 2 * ADDR_LEN:
                self.counts[4] += 1
                continue
            if self.chip == 'esp8266' and data[ADDR_LEN:2 * ADDR_LEN] == _BROADCAST:
                continue  # an ESP8266 does not receive broadcasts
            self.counts[3] += 1
            return [data[:ADDR_LEN], data[2 * ADDR_LEN:]]
        return (None, None)

    irecv = recv

    def stats(self):
        return tuple(self.counts)
