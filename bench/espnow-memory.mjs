// The ESP-NOW rows of docs/device.md "Memory" (ESP-NOW peripherals): heap kept after gc.collect() inside
// MicroPython 1.27 (WebAssembly), the esp32 file set, an `espnow` stand-in. Run after `npx tsc -p tsconfig.json`:
// node bench/espnow-memory.mjs
import { board } from '../dist/test/helpers/device-memory.js';

const ESPNOW = `
class ESPNow:
    def __init__(self):
        self.pc_mac = b'\\x02\\xaa\\x00\\x00\\x00\\x01'
        self.inbox = []
        self.sent = 0
    def active(self, flag=None): return True
    def add_peer(self, mac): pass
    def recv(self, ms=0): return self.inbox.pop(0) if self.inbox else (None, None)
    def send(self, mac, msg, sync=True): self.sent += 1
`;
const b = await board('esp32');
b.mp.FS.writeFile('/lib/espnow.py', ESPNOW);
b.run(
  "import network\ndef _config(self, *a, **k):\n    return (b'\\x02\\xaa\\x00\\x00\\x00\\x01' if a[0] == 'mac' else 6) if a else None\nnetwork.WLAN.config = _config\n_config = None\ngc.collect()",
);
b.run('import espnow\nimport mqttkit\nfrom mqttkit import Device\ngc.collect()');
const base = b.live();
b.run('from mqttkit import espnow_frame\ngc.collect()');
const frame = b.live();
b.run('from mqttkit import espnow\ngc.collect()');
const periph = b.live();
b.run('from mqttkit import espnow_gateway\ngc.collect()');
const gwmod = b.live();
b.run('g = espnow_gateway.Gateway()\ngc.collect()');
const gw = b.live();
// one paired peripheral with a write delivered and its exchange kept; then 8 of them (the cap)
const exch = (n) => `
import time, json
from mqttkit.espnow_frame import build, WAKE, DATA
for i in range(${n}):
    pid = 'soil-%d' % i
    mac = bytes([2, 0xbb, 0, 0, 0, i])
    key = bytes([i]) * 32
    g.peers[pid] = {'mac': mac.hex(), 'key': key.hex(), 'txid': 100, 'saved': 100}
    g._index()
    g._on_mqtt('HomeKit/%s/Switch/On/set' % pid, b'1', True)
    g.radio.inbox.append((mac, build(key, mac, WAKE, 1, 0)))
    g.radio.inbox.append((mac, build(key, mac, DATA, 101, int(time.time()), json.dumps({'TemperatureSensor/CurrentTemperature': 20.5, 'Switch/On': 0, '$sleep': 600}).encode())))
    g.poll(0)
g.device.queue = []
print(len(getattr(g, 'sessions', {})))
gc.collect()`;
b.run(exch(1));
const one = b.live();
b.run(exch(8).replace('range(8)', 'range(1, 8)'));
const eight = b.live();
const kb = (n) => (n / 1024).toFixed(1);
console.log({
  importMqttkit: 'base',
  frame: kb(frame - base),
  peripheralModule: kb(periph - frame),
  gatewayModule: kb(gwmod - periph),
  gatewayConstructed: kb(gw - gwmod),
  gatewayAboveImport: kb(gw - base),
  onePeer: kb(one - gw),
  eightPeers: kb(eight - gw),
});
