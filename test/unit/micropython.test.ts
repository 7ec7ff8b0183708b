/**
 * The device library must be real MicroPython, not just CPython: every file is compiled by the
 * MicroPython compiler (WebAssembly build from npm), then the library is imported and exercised inside
 * MicroPython with the board-only modules (machine, network, socket) stubbed, the one hardware edge.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadMicroPython } from '@micropython/micropython-webassembly-pyscript/micropython.mjs';
import { LIBRARY } from '../helpers/python-device.js';

type MicroPython = Awaited<ReturnType<typeof loadMicroPython>>;

function pythonFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === '__pycache__' ? [] : pythonFiles(path);
    return name.endsWith('.py') ? [path] : [];
  });
}

const STUBS: Record<string, string> = {
  'machine.py': `
PWRON_RESET = 1
DEEPSLEEP_RESET = 4
def unique_id(): return b'\\x12\\x34\\x56\\x78\\x9a\\xbc'
def reset_cause(): return DEEPSLEEP_RESET
def reset(): raise SystemExit('reset')
def deepsleep(ms): raise SystemExit('deepsleep %d' % ms)
class WDT:
    def __init__(self, timeout): pass
    def feed(self): pass
`,
  'network.py': `
STA_IF = 0
class WLAN:
    def __init__(self, interface): pass
    def active(self, on): pass
    def isconnected(self): return True
    def connect(self, ssid, password): pass
`,
  'socket.py': `
SOCK_STREAM = 1
def getaddrinfo(host, port, family=0, kind=0): return [(2, 1, 0, '', (host, port))]
class socket:
    def __init__(self): raise OSError('no network in this test')
`,
};

describe('device library under MicroPython', () => {
  let mp: MicroPython;
  let output = '';
  const run = (code: string) => {
    output = '';
    mp.runPython(code);
    return output.trim();
  };

  before(async () => {
    mp = await loadMicroPython({ stdout: (line: string) => (output += `${line}\n`), stderr: (line: string) => (output += `${line}\n`) });
  });

  it('compiles every file with the MicroPython compiler', () => {
    const files = pythonFiles(LIBRARY);
    assert.ok(files.length >= 8, `found ${files.length} files`);
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

  it('imports and runs the library inside MicroPython', () => {
    mp.FS.mkdirTree('/lib/mqttkit');
    mp.FS.mkdirTree('/device');
    for (const [name, text] of Object.entries(STUBS)) mp.FS.writeFile(`/lib/${name}`, text);
    for (const file of pythonFiles(join(LIBRARY, 'mqttkit'))) mp.FS.writeFile(`/lib/mqttkit/${relative(join(LIBRARY, 'mqttkit'), file)}`, readFileSync(file, 'utf8'));
    mp.FS.writeFile('/device/config.json', JSON.stringify({ broker: '192.0.2.1', device_id: 'mp-1' }));
    run('import sys; sys.path.insert(0, "/lib")');
    run('from mqttkit import files, port; files.ROOT = "/device"');

    // Packets round-trip through our own encoder and parser.
    assert.equal(run(`
from mqttkit import mqtt
p = mqtt.publish_packet('HomeKit/mp-1/Switch/On', '1', 1, True, 7)
kind, body, used = mqtt.parse(bytearray(p))
print(kind == 0x33, used == len(p), body[-1:] == b'1', mqtt.encode_length(321) == bytes([0xc1, 0x02]))
c = mqtt.connect_packet('mp-1', 'mp-1', 'secret', ('HomeKit/mp-1/$state', 'offline', 1, True), 30)
print(mqtt.parse(bytearray(c))[0] == 0x10)
`), 'True True True True\nTrue');

    // A Device builds from config.json, generates and keeps a password, queues while offline, answers commands.
    assert.equal(run(`
from mqttkit import Device
from mqttkit import commands
d = Device(name='MP', firmware='1.2.3')
print(d.id, len(d.password), files.read_file('mqtt_password') == d.password)
d.publish('Switch', 'On', True)
d.publish('Switch', 'On', 0, index=2)
print(d.queue)
print(commands.getversion(d, '')['python'].startswith('micropython'), commands.msg_reboot(d, ''))
print(d.step(0) is None, d.connected)
`), "mp-1 32 True\n[('HomeKit/mp-1/Switch/On', '1', False), ('HomeKit/mp-1/Switch/2/On', '0', False)]\nTrue wake from deep sleep\nTrue False");
  });

  it('refuses a reserved device id, in any case ([P-2])', () => {
    assert.equal(run(`
from mqttkit.identity import load_identity
for name in ('OTA', 'homekit', 'Stat', 'tele', 'cmnd'):
    try:
        load_identity({'device_id': name})
        print('accepted', name)
    except ValueError as e:
        print('reserved' in str(e))
print(load_identity({'device_id': 'ota-1'})[0])
`), 'True\nTrue\nTrue\nTrue\nTrue\nota-1');
  });
});
