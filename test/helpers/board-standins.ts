/**
 * Stand-ins for the board modules the device library imports (machine, network, esp32), written from
 * MicroPython 1.27's documentation and the ports' C code: the one hardware edge of the device tests.
 * machine.WDT follows the ports: on ESP8266 a timeout other than the default raises ValueError
 * ("a timeout cannot be specified", docs: machine.WDT). Set `machine.PORT` to the port being played.
 * esp32.Partition models the ESP-IDF bootloader's A/B rule: set_boot() marks the other app partition;
 * reset() boots it unconfirmed; mark_app_valid_cancel_rollback() confirms the running one; a reset
 * while unconfirmed boots the previous one again. Flash contents are kept per block.
 * Sockets differ per test (a recording one, a scripted broker, none at all): each test brings its own.
 */
export const BOARD_MODULES: Readonly<Record<string, string>> = {
  'machine.py': `
PORT = 'esp32'
PWRON_RESET = 1
DEEPSLEEP_RESET = 4
FEEDS = []
def unique_id(): return b'\\x12\\x34\\x56\\x78\\x9a\\xbc'
def reset_cause(): return DEEPSLEEP_RESET
def reset(): raise SystemExit('reset')
def deepsleep(ms): raise SystemExit('deepsleep %d' % ms)
class WDT:
    def __init__(self, id=0, timeout=5000):
        if PORT == 'esp8266' and timeout != 5000:
            raise ValueError()
        self.timeout = timeout
    def feed(self): FEEDS.append(1)
`,
  'network.py': `
STA_IF = 0
class WLAN:
    def __init__(self, interface): pass
    def active(self, on): pass
    def isconnected(self): return True
    def connect(self, ssid, password): pass
    def ifconfig(self): return ('192.168.1.50', '255.255.255.0', '192.168.1.1', '192.168.1.1')
`,
  'esp32.py': `
class Partition:
    RUNNING = 1
    BOOT = 0
    TYPE_APP = 0
    flash = {'ota_0': {}, 'ota_1': {}}
    state = {'running': 'ota_0', 'boot': 'ota_0', 'previous': None, 'valid': True}
    def __init__(self, which):
        self.label = Partition.state['running'] if which == Partition.RUNNING else which
    @classmethod
    def find(cls, type=0): return [Partition('ota_0'), Partition('ota_1')]
    def info(self): return (0, 16, 0x10000, 0x180000, self.label, False)
    def get_next_update(self): return Partition('ota_1' if self.label == 'ota_0' else 'ota_0')
    def writeblocks(self, block, buf):
        assert len(buf) == 4096, 'whole blocks only'
        Partition.writes.append(id(buf))
        Partition.flash[self.label][block] = bytes(buf)
    def set_boot(self): Partition.state['boot'] = self.label
    @classmethod
    def mark_app_valid_cancel_rollback(cls): Partition.state['valid'] = True
    @classmethod
    def reset(cls):
        s = Partition.state
        if s['boot'] != s['running']:
            s['previous'], s['running'], s['valid'] = s['running'], s['boot'], False
        elif not s['valid'] and s['previous']:
            s['running'] = s['boot'] = s['previous']
            s['valid'] = True
    def image(self):
        blocks = Partition.flash[self.label]
        return b''.join(blocks[i] for i in range(len(blocks)))
Partition.writes = []
`,
};

/** The board modules plus a socket module of the test's own. */
export function boardModules(socketModule: string): Record<string, string> {
  return { ...BOARD_MODULES, 'socket.py': socketModule };
}
