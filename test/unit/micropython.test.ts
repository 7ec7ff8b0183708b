/**
 * The device library must be real MicroPython, not just CPython: every board file is compiled by the
 * MicroPython compiler (WebAssembly build from npm), then each port's file set (ports.json) is imported
 * and exercised inside MicroPython with the board-only modules (machine, network, socket, esp32)
 * replaced by stand-ins written from MicroPython 1.27's documentation, the one hardware edge.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadMicroPython } from '@micropython/micropython-webassembly-pyscript/micropython.mjs';
import { boardModules } from '../helpers/board-standins.js';
import { WIFI_PORTS } from '../helpers/device-packages.js';
import { espnowFrame } from '../helpers/espnow-air.js';
import { LIBRARY } from '../helpers/python-device.js';

type MicroPython = Awaited<ReturnType<typeof loadMicroPython>>;

function pythonFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === '__pycache__' ? [] : pythonFiles(path);
    return name.endsWith('.py') ? [path] : [];
  });
}

const PORTS = JSON.parse(readFileSync(join(LIBRARY, 'ports.json'), 'utf8')) as Record<string, string[]>;

/** The install lists docs/device.md shows, by package: every ```sh block marked `# port: <name>`. */
function documentedLists(): Record<string, string[]> {
  const lists: Record<string, string[]> = {};
  for (const block of DOC.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const text = block[1]!;
    const marked = /^# port: (\S+)/m.exec(text);
    if (!marked) continue;
    const commands = text.replace(/\\\n/g, ' ').split('\n');
    lists[marked[1]!] = commands
      .filter((line) => line.trim().startsWith('mpremote cp ') && line.includes(':mqttkit/'))
      .flatMap((line) => line.trim().split(/\s+/).slice(2))
      .filter((token) => token.endsWith('.py'));
  }
  return lists;
}
const DOC = readFileSync(join(LIBRARY, '..', '..', 'docs', 'device.md'), 'utf8');

// A socket serving the bytes queued in SERVE; it records every read (buffer identity, size asked)
// and, like MicroPython's, has no getsockname.
const SOCKET = `
SOCK_STREAM = 1
SERVE = []
READS = []
def getaddrinfo(host, port, family=0, kind=0): return [(2, 1, 0, '', (host, port))]
class socket:
    def __init__(self):
        if not SERVE:
            raise OSError('no network in this test')
        self.data = SERVE.pop(0)
        self.at = 0
    def settimeout(self, s): pass
    def connect(self, address): pass
    def close(self): pass
    def readinto(self, buf):
        READS.append((id(buf), len(buf)))
        n = min(len(buf), len(self.data) - self.at, 300)
        buf[0:n] = self.data[self.at:self.at + n]
        self.at += n
        return n
    def recv(self, n):
        READS.append((None, n))
        chunk = self.data[self.at:self.at + n]
        self.at += len(chunk)
        return chunk
    read = recv
`;
const STUBS = boardModules(SOCKET);

describe('device library under MicroPython', () => {
  let mp: MicroPython;
  let output = '';
  const run = (code: string) => {
    output = '';
    mp.runPython(code);
    return output.trim();
  };
  /** Installs one port's file set (ports.json) as /<port>/mqttkit and imports it fresh as `mqttkit`. */
  const usePort = (port: string, root: string, config: Record<string, unknown>) => {
    mp.FS.mkdirTree(`/${port}/mqttkit`);
    mp.FS.mkdirTree(root);
    for (const file of PORTS[port]!) mp.FS.writeFile(`/${port}/${file}`, readFileSync(join(LIBRARY, file), 'utf8'));
    mp.FS.writeFile(`${root}/config.json`, JSON.stringify(config));
    run(`
import sys
for name in [n for n in sys.modules if n == 'mqttkit' or n.startswith('mqttkit.')]:
    del sys.modules[name]
sys.path[:] = [p for p in sys.path if p not in ('/esp32', '/esp8266')]
sys.path.insert(0, '/${port}')
import machine
machine.PORT = '${port}'
from mqttkit import files, port
files.ROOT = '${root}'
`);
  };

  before(async () => {
    mp = await loadMicroPython({ stdout: (line: string) => (output += `${line}\n`), stderr: (line: string) => (output += `${line}\n`) });
    mp.FS.mkdirTree('/lib');
    for (const [name, text] of Object.entries(STUBS)) mp.FS.writeFile(`/lib/${name}`, text);
    run('import sys; sys.path.insert(0, "/lib")');
  });

  it('compiles every board file and example with the MicroPython compiler', () => {
    const files = [...new Set(Object.values(PORTS).flat())].map((f) => join(LIBRARY, f)).concat(pythonFiles(join(LIBRARY, 'examples')));
    assert.ok(files.length >= 10, `found ${files.length} files`);
    for (const file of files) {
      mp.globals.set('source', readFileSync(file, 'utf8'));
      mp.globals.set('name', relative(LIBRARY, file));
      try {
        mp.runPython('compile(source, name, "exec")');
      } catch (error) {
        assert.fail(`${relative(LIBRARY, file)} is not valid MicroPython:\n${(error as Error).message}`);
      }
    }
  });

  it('refuses CPython-only syntax (the check can fail)', () => {
    mp.globals.set('source', 'match x:\n    case 1:\n        pass\n');
    assert.throws(() => mp.runPython('compile(source, "probe.py", "exec")'), /SyntaxError/);
  });

  it('ships board code only: the PC stand-in is outside the installed files (finding 9)', () => {
    const shipped = Object.values(PORTS).flat();
    for (const file of shipped) {
      assert.match(file, /^mqttkit\/[a-z_0-9]+\.py$/, `${file}: only the mqttkit package is installed`);
      const text = readFileSync(join(LIBRARY, file), 'utf8');
      // No CPython branch or module, no call a board does not have (MicroPython sockets lack getsockname).
      assert.doesNotMatch(
        text,
        /'cpython'|MICROPYTHON|implementation\.name ==|import (traceback|uuid|threading)|time\.monotonic|\.getsockname\(/,
        `${file} holds PC code`,
      );
    }
    assert.ok(!shipped.some((f) => f.startsWith('pc/')), 'pc/ is never installed');
    const standIn = readFileSync(join(LIBRARY, 'pc', 'mqttkit_pc_port.py'), 'utf8');
    assert.match(standIn, /def firmware_boot\(/, 'the PC stand-in plays the bootloader');
  });

  it("docs/device.md's mpremote lists are exactly each package's files in ports.json, and each package has its one mip command (finding 1)", () => {
    const documented = documentedLists();
    assert.deepEqual(Object.keys(documented).sort(), [...WIFI_PORTS].sort(), 'one mpremote block per Wi-Fi port');
    for (const [port, files] of Object.entries(PORTS)) {
      if (documented[port]) assert.deepEqual([...documented[port]!].sort(), [...files].sort(), `docs/device.md, ${port}`);
      assert.ok(DOC.includes(`mpremote mip install http://<hub>:8581/device/${port}/package.json`), `docs/device.md shows the one command installing ${port}`);
    }
    assert.doesNotMatch(DOC, /not in `ports.json`/, 'the link files are in ports.json now');
  });

  const QUIET = 'class Quiet:\n    def any(self): return 0\n    def read(self, n): return b""\n    def write(self, b): return len(b)\n';
  const HOST = `from mqttkit.link import Host
host = Host(Quiet(), {'watchdog_ms': 3000})
host.step(0)
for text in ('stats', 'getversion', 'msg_reboot'):
    host._on_message('cmnd/mp-pkg/OTA', text.encode())
print('answers', len(host.queue))`;
  const BRIDGE = `from mqttkit.link import Bridge
bridge = Bridge(Quiet(), {'ntp_host': '', 'watchdog_ms': 3000})
bridge.step(0)
from mqttkit import connect
print('answers', 0)`;
  for (const [name, code] of [
    ['generic_link_host', HOST],
    ['esp8266_link_bridge', BRIDGE],
    ['esp32_link_bridge', BRIDGE],
  ] as const) {
    it(`${name}: the package's files alone run its role (ports.json is complete for it)`, () => {
      mp.FS.mkdirTree(`/${name}/mqttkit`);
      mp.FS.mkdirTree(`/dev-${name}`);
      for (const file of PORTS[name]!) mp.FS.writeFile(`/${name}/${file}`, readFileSync(join(LIBRARY, file), 'utf8'));
      mp.FS.writeFile(`/dev-${name}/config.json`, JSON.stringify({ broker: '192.0.2.1', device_id: 'mp-pkg' }));
      const out = run(`
import sys
for n in [n for n in sys.modules if n == 'mqttkit' or n.startswith('mqttkit.')]:
    del sys.modules[n]
sys.path[:] = [p for p in sys.path if p == '/lib']
sys.path.insert(0, '/${name}')
import machine
machine.PORT = '${name.split('_')[0]}'
from mqttkit import files
files.ROOT = '/dev-${name}'
${QUIET}${code}
print(' '.join(sorted(n[8:] for n in sys.modules if n.startswith('mqttkit.'))))
`);
      assert.match(out, /^answers \d+/, out);
      const loaded = out.split('\n').pop()!.split(' ');
      const listed = PORTS[name]!.map((f) => f.replace(/^mqttkit\//, '').replace(/\.py$/, '')).filter((m) => m !== '__init__');
      // What the role runs comes from the package alone; the host's rarely used modules (identity,
      // commands, board) load on demand and are dropped again, so only the always-loaded ones are seen.
      for (const m of loaded) assert.ok(listed.includes(m), `${name} loaded mqttkit.${m}, which its package lacks`);
    });
  }

  for (const port of WIFI_PORTS) {
    it(`${port}: its files alone import and run, each of them is loaded (ports.json is complete and minimal), the rare ones only on demand`, () => {
      usePort(port, `/dev-${port}`, { broker: '192.0.2.1', device_id: `mp-${port}`, watchdog_ms: 3000 });
      // identity.py runs inside Device() (it writes the password on first boot), commands.py when a
      // command arrives, ota.py for an OTA command; each is seen loaded at that moment and gone after.
      const loaded = run(`
seen = set()
def snap():
    seen.update(n for n in sys.modules if n == 'mqttkit' or n.startswith('mqttkit.'))
write = files.write_file
def spy(name, text):
    snap()
    write(name, text)
files.write_file = spy
from mqttkit import Device
d = Device(name='MP')
files.write_file = write
mods = lambda: ' '.join(sorted(n[8:] for n in sys.modules if n.startswith('mqttkit.')))
print(mods())
d._on_message('cmnd/mp-${port}/OTA', b'getversion')
snap()
print(mods())
d._on_message('cmnd/mp-${port}/OTA', b'partitions')
snap()
print(mods(), d.queue[-1][1].startswith('{"') and d.queue[-2][1].startswith('{"'))
d.loaded = dict((name, -10 ** 6) for name in d.loaded)
d.step(0)
snap()
print(mods())
print(' '.join(sorted(seen)))
`).split('\n');
      // ESP-NOW (espnow*.py, issue 16) is loaded only by a gateway's or a peripheral's program: its own test below.
      const expected = PORTS[port]!.filter((f) => !f.startsWith('mqttkit/espnow'))
        .map((f) =>
          f
            .replace(/\.py$/, '')
            .replace(/\/__init__$/, '')
            .replace(/\//g, '.'),
        )
        .sort();
      const always = ['device', 'files', 'mqtt', 'port'];
      const chip = `chip_${port}`;
      assert.equal(
        loaded[0],
        [...always, chip].sort().join(' '),
        'after Device(): identity.py dropped; the chip module (its watchdog) loaded; commands.py, ota.py, board.py, connect.py not',
      );
      assert.equal(loaded[1], [...always, 'board', chip, 'commands'].sort().join(' '), 'a command loads commands.py (getversion: board.py)');
      assert.equal(loaded[2], `${[...always, 'board', chip, 'commands', 'ota'].sort().join(' ')} True`, 'an OTA command loads ota.py; both answered');
      assert.equal(loaded[3], [...always, 'connect'].sort().join(' '), 'unused for LINGER_MS: dropped; connect.py loaded while not connected');
      assert.deepEqual(loaded[4]!.split(' '), expected, 'every listed file was loaded at some point');
    });
  }

  it('echoes request ids: "#<n> <command>" is answered "#<n> <answer>", by commands.py and ota.py alike; getversion says "rid": 1 (issue 12, [O-12])', () => {
    usePort('esp8266', '/dev-rid', { broker: '192.0.2.1', device_id: 'mp-rid', watchdog_ms: 3000 });
    const lines = run(`
from mqttkit import Device
d = Device(name='MP')
@d.command('echo')
def echo(device, argument):
    return 'echo:' + argument
for text in ('#7 getversion', '#8 partitions', '#9 echo a b', '#10 nosuch', 'msg_exception', '#11'):
    d._on_message('cmnd/mp-rid/OTA', text.encode())
for topic, payload, _retain in d.queue:
    if topic == 'stat/mp-rid/Log':
        print(payload)
`).split('\n');
    assert.match(lines[0]!, /^#7 \{"/);
    assert.equal((JSON.parse(lines[0]!.slice(3)) as { rid?: unknown }).rid, 1, 'getversion announces that it echoes');
    assert.match(lines[1]!, /^#8 \{"count": 1/, 'an OTA command (ota.py) echoes too');
    assert.equal(lines[2], '#9 echo:a b', 'an application command gets the argument, the answer the id');
    assert.match(lines[3]!, /^#10 unknown command nosuch \(known: /);
    assert.equal(lines[4], 'no exception recorded', 'without an id, the answer is as before');
    assert.match(lines[5]!, /^#11 unknown command {2}\(known: /, 'an id without a command is answered, not a crash');
  });

  it('esp32: the ESP-NOW frame codec runs under MicroPython and its tag is HMAC-SHA256 as Node computes it (issue 16, [E-1], [E-2])', () => {
    usePort('esp32', '/dev-espnow', { broker: '192.0.2.1', device_id: 'mp-espnow' });
    const lines = run(`
from mqttkit import espnow_frame as f
from mqttkit.espnow import Gateway, Peripheral
key = bytes(range(32))
peer = b'\\x02\\xbb\\x00\\x00\\x00\\x01'
frame = f.build(key, peer, f.DATA, 7, 1234567, b'{"Switch/On": 1}')
print(frame.hex())
print(f.verify(key, peer, frame), f.verify(key, b'\\x02\\xbb\\x00\\x00\\x00\\x02', frame), f.verify(key, peer, frame[:-1] + bytes([frame[-1] ^ 1])))
print(f.parse(frame)[:4])
print(f.hmac_sha256(b'key', b'The quick brown fox jumps over the lazy dog').hex())
`).split('\n');
    const key = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
    assert.equal(lines[0], espnowFrame(key, '02bb00000001', 0x03, 7, 1234567, Buffer.from('{"Switch/On": 1}')).toString('hex'));
    assert.equal(lines[1], 'True False False', 'the tag binds the peripheral address; one flipped bit fails');
    assert.equal(lines[2], '(3, 7, 1234567, b\'{"Switch/On": 1}\')');
    assert.equal(lines[3], createHmac('sha256', 'key').update('The quick brown fox jumps over the lazy dog').digest('hex'), 'RFC 2104 HMAC');
  });

  it('esp8266 starts its fixed-timeout watchdog; esp32 sets the timeout (finding 3)', () => {
    usePort('esp8266', '/dev-wdt8266', { broker: '192.0.2.1', device_id: 'wdt-8266', watchdog_ms: 3000 });
    assert.equal(run('from mqttkit import Device\nd = Device()\nprint(d.dog.timeout)'), '5000');
    usePort('esp32', '/dev-wdt32', { broker: '192.0.2.1', device_id: 'wdt-32', watchdog_ms: 8000 });
    assert.equal(run('from mqttkit import Device\nd = Device()\nprint(d.dog.timeout)'), '8000');
  });

  it('imports and runs the library inside MicroPython', () => {
    usePort('esp32', '/device', { broker: '192.0.2.1', device_id: 'mp-1' });
    // Packets round-trip through our own encoder and parser.
    assert.equal(
      run(`
from mqttkit import mqtt
p = mqtt.publish_packet('HomeKit/mp-1/Switch/On', '1', 1, True, 7)
kind, body, used = mqtt.parse(bytearray(p))
print(kind == 0x33, used == len(p), body[-1:] == b'1', mqtt.encode_length(321) == bytes([0xc1, 0x02]))
from mqttkit import connect
c = connect.connect_packet('mp-1', 'mp-1', 'secret', ('HomeKit/mp-1/$state', 'offline', 1, True), 30)
print(mqtt.parse(bytearray(c))[0] == 0x10)
`),
      'True True True True\nTrue',
    );

    // A Device builds from config.json, generates and keeps a password, queues while offline, answers commands.
    assert.equal(
      run(`
from mqttkit import Device
from mqttkit import commands
d = Device(name='MP', firmware='1.2.3')
print(d.id, len(d.password), files.read_file('mqtt_password') == d.password)
d.publish('Switch', 'On', True)
d.publish('Switch', 'On', 0, index=2)
print(d.queue)
print(commands.getversion(d, '')['python'].startswith('micropython'), commands.msg_reboot(d, ''))
print(d.step(0) is None, d.connected)
`),
      "mp-1 32 True\n[('HomeKit/mp-1/Switch/On', '1', False), ('HomeKit/mp-1/Switch/2/On', '0', False)]\nTrue wake from deep sleep\nTrue False",
    );
  });

  it("open reports the network interface's address: board sockets have no getsockname (finding 4)", () => {
    usePort('esp32', '/dev-open', { broker: '192.0.2.1', device_id: 'mp-open' });
    assert.equal(
      run(`
from mqttkit import Device
d = Device()
class Client:
    sock = object()  # like a board's socket: no getsockname
d.client = Client()
d._on_message('cmnd/mp-open/OTA', b'open')
print(d.queue[-1][1])
print(d.queue[-2])
`),
      'ota open at 192.168.1.50\n(\'stat/mp-open/OTA\', \'{"address": "192.168.1.50"}\', False)',
    );
  });

  for (const fs of ['LittleFS', 'FAT']) {
    it(`write_file: a power cut at any step leaves the password readable, old or new (${fs}) (finding 5)`, () => {
      usePort('esp8266', `/dev-cut-${fs}`, { broker: '192.0.2.1', device_id: 'mp-cut' });
      // Every filesystem operation (and each half of a write) is a step; the cut raises at step `at`
      // and the "board" boots again with whatever is on the filesystem.
      const result = run(`
import os
class PowerCut(Exception): pass
state = {'left': -1}
def step():
    if state['left'] == 0:
        raise PowerCut()
    state['left'] -= 1
class CutOs:
    def stat(self, p): return os.stat(p)
    def remove(self, p):
        step(); os.remove(p)
    def rename(self, a, b):
        step()
        if ${fs === 'FAT' ? 'True' : 'False'}:
            try:
                os.stat(b)
                raise OSError(17)  # FAT: EEXIST, never replaces
            except OSError as e:
                if e.args[0] == 17: raise
        os.rename(a, b)
class CutFile:
    def __init__(self, f): self.f = f
    def __enter__(self): return self
    def __exit__(self, *a): self.f.close()
    def write(self, text):
        half = len(text) // 2
        step(); self.f.write(text[:half])
        step(); self.f.write(text[half:])
def cut_open(p, mode='r'):
    if 'w' in mode:
        step()
        return CutFile(open(p, mode))
    return open(p, mode)
files.os = CutOs()
files.open = cut_open
results = []
at = 0
while True:
    for name in os.listdir('/dev-cut-${fs}'):
        if name.startswith('mqtt_password'):
            os.remove('/dev-cut-${fs}/' + name)
    state['left'] = -1
    files.write_file('mqtt_password', 'old-password')
    state['left'] = at
    try:
        files.write_file('mqtt_password', 'new-password')
        finished = True
    except PowerCut:
        finished = False
    state['left'] = -1
    results.append(files.read_file('mqtt_password'))
    again = files.read_file('mqtt_password')
    if again != results[-1]:
        results.append('changed on a second read: %r' % again)
    if finished:
        break
    at += 1
print(at, results[-1], all(r in ('old-password', 'new-password') for r in results), results)
`);
      const [steps, last, allReadable] = result.split(' ');
      assert.ok(Number(steps) >= 4, `cut at ${steps} steps`);
      assert.equal(last, 'new-password');
      assert.equal(allReadable, 'True', result);
    });
  }

  it('a transfer reads through one 512-byte buffer; firmware goes to the next partition through one 4 KiB block buffer (finding 6)', () => {
    usePort('esp32', '/dev-chunk', { broker: '192.0.2.1', device_id: 'mp-chunk' });
    assert.equal(
      run(`
import hashlib, binascii, socket
from esp32 import Partition
from mqttkit import ota
data = bytes(i % 251 for i in range(10000))
digest = binascii.hexlify(hashlib.sha256(data).digest()).decode()
socket.SERVE.append(data)
del socket.READS[:]
print(ota.receive('127.0.0.1', 1, 'lib/big.py', 'sha256', digest)[:3] == (True, digest, None))
with open(files.path('lib/big.py.new'), 'rb') as f:
    print(f.read() == data)
reads = socket.READS
print(len(reads) > 30, len(set(r[0] for r in reads)) == 1, None not in [r[0] for r in reads], max(r[1] for r in reads) <= 512)
socket.SERVE.append(data)
del socket.READS[:]
del Partition.writes[:]
ok, actual, error, sink = ota.receive('127.0.0.1', 1, ota.FIRMWARE, 'sha256', digest)
print(ok, sink.label, max(r[1] for r in socket.READS) <= 512, len(Partition.writes), len(set(Partition.writes)))
image = Partition('ota_1').image()
print(image[:10000] == data, image[10000:] == b'\\xff' * (3 * 4096 - 10000))
`),
      'True\nTrue\nTrue True True True\nTrue ota_1 True 3 1\nTrue True',
    );
  });

  it('[O-16] a build without hashlib.sha256 (some ESP8266 builds) lists only sha1 in getversion and refuses a sha256 trigger by report', () => {
    usePort('esp8266', '/dev-nosha', { broker: '192.0.2.1', device_id: 'mp-nosha' });
    const out = run(`
import sys, json
import hashlib as real
class NoSha256:  # a build's hashlib without sha256 (this WebAssembly build has no sha1 to copy in)
    pass
sys.modules['hashlib'] = NoSha256
try:
    from mqttkit import Device, commands
    d = Device()
    print(commands.getversion(d, '')['hashes'])
    d._on_message('mp-nosha/OTA', '127.0.0.1|1|main.py|sha256:00|0')
    report = json.loads(d.queue.pop()[1])
    print(report['ok'], report['error'])
finally:
    sys.modules['hashlib'] = real
    for name in ('mqttkit.ota', 'mqttkit.commands'):
        sys.modules.pop(name, None)
`);
    assert.match(out, /^\['sha1'\]\nFalse sha256 is not supported by this board/, out);
  });

  it('firmware A/B on the esp32.Partition path: written to the next partition, reported, kept; rolled back without keepversion (finding 2)', () => {
    usePort('esp32', '/dev-ab', { broker: '192.0.2.1', device_id: 'mp-ab' });
    const out = run(`
import hashlib, binascii, json, socket
from esp32 import Partition
from mqttkit import Device, commands
d = Device()
def version():
    v = commands.getversion(d, '')
    return '%s ota=%s' % (v['partition'], v['ota'])
def push(data):
    socket.SERVE.append(data)
    digest = binascii.hexlify(hashlib.sha256(data).digest()).decode()
    d._on_message('mp-ab/OTA', '127.0.0.1|1|$firmware|sha256:%s|0' % digest)
    report = json.loads(d.queue.pop()[1])
    return '%s %s' % (report['ok'], report.get('partition'))
print(version())
print(push(b'image two' * 1000))
print(Partition.state['boot'], version())
Partition.reset()
d._on_message('cmnd/mp-ab/OTA', 'keepversion')
print(version(), d.queue.pop()[1])
Partition.reset()
print(version())
print(push(b'image three' * 1000))
Partition.reset()
print(version())
Partition.reset()
print(version())
`);
    assert.equal(
      out,
      [
        'ota_0 ota=2', // running from ota_0, speaks trigger version 2
        'True ota_1', // the report names the partition written
        'ota_1 ota_0 ota=2', // marked for the next boot, still running ota_0
        'ota_1 ota=2 firmware on ota_1 kept', // booted into it; keepversion confirms it
        'ota_1 ota=2', // a confirmed image stays
        'True ota_0',
        'ota_0 ota=2', // boots the new one, unconfirmed
        'ota_1 ota=2', // reset without keepversion: the bootloader goes back
      ].join('\n'),
    );
  });

  it('refuses a reserved device id, in any case ([P-2])', () => {
    assert.equal(
      run(`
from mqttkit.identity import load_identity
for name in ('OTA', 'homekit', 'Stat', 'tele', 'cmnd'):
    try:
        load_identity({'device_id': name})
        print('accepted', name)
    except ValueError as e:
        print('reserved' in str(e))
print(load_identity({'device_id': 'ota-1'})[0])
`),
      'True\nTrue\nTrue\nTrue\nTrue\nota-1',
    );
  });
});
