/**
 * Issue 11, "One-command install": a running hub serves the device library as a `mip` package
 * (`mpremote mip install http://<hub>:8581/device/package.json`), without login, per port as
 * device/micropython/ports.json lists it; every listed file byte for byte, nothing else (no `..`
 * spelling reaches another file); and the files of each port's package import under MicroPython.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadMicroPython } from '@micropython/micropython-webassembly-pyscript/micropython.mjs';
import { boardModules } from '../helpers/board-standins.js';
import { type RunningHub, removeDataDir, startHub } from '../helpers/hub-process.js';
import { LIBRARY } from '../helpers/python-device.js';
import { rawRequest } from '../helpers/raw-http.js';

interface MipPackage {
  urls: Array<[string, string]>;
  version: string;
}

const PORTS = JSON.parse(readFileSync(join(LIBRARY, 'ports.json'), 'utf8')) as Record<string, string[]>;

/** The board modules (the one hardware edge), with a socket that has no network. */
const STUBS = boardModules(`
SOCK_STREAM = 1
def getaddrinfo(host, port, family=0, kind=0): return [(2, 1, 0, '', (host, port))]
class socket:
    def __init__(self, *a): raise OSError('no network in this test')
`);

describe('the device library as a mip package', { timeout: 120_000 }, () => {
  let hub: RunningHub;
  let port: number;
  const get = (path: string) => rawRequest(port, { path });
  const fetchBytes = async (url: string) => Buffer.from(await (await fetch(url)).arrayBuffer());

  before(async () => {
    hub = await startHub();
    port = hub.info.httpPort!;
  });
  after(async () => {
    await hub?.stop('SIGKILL');
    if (hub) removeDataDir(hub.dataDir);
  });

  it('serves package.json without login, per port as ports.json lists, and every listed file byte for byte', async () => {
    const plain = await get('/device/package.json');
    assert.equal(plain.status, 200, plain.body);
    const all = JSON.parse(plain.body) as MipPackage;
    const union = [...new Set(Object.values(PORTS).flat())];
    assert.deepEqual(all.urls.map(([dest]) => dest).sort(), union.sort(), "the plain package holds every port's files");
    assert.match(all.version, /^\d+\.\d+\.\d+/);
    for (const [name, files] of Object.entries(PORTS)) {
      const response = await get(`/device/${name}/package.json`);
      assert.equal(response.status, 200, `${name}: ${response.body}`);
      const pkg = JSON.parse(response.body) as MipPackage;
      assert.deepEqual(
        pkg.urls.map(([dest]) => dest),
        files,
        `${name} installs what ports.json lists`,
      );
      for (const [dest, url] of pkg.urls) {
        // mip joins `<target>/<dest>`: a dest must stay inside the target.
        assert.ok(!dest.startsWith('/') && !dest.split('/').includes('..'), dest);
        assert.ok(url.startsWith(`http://127.0.0.1:${port}/device/`), url);
        const served = await fetchBytes(url);
        assert.ok(served.equals(readFileSync(join(LIBRARY, dest))), `${url} is byte-identical to device/micropython/${dest}`);
      }
    }
    assert.equal((await get('/device/avr/package.json')).status, 404, 'an unknown port is a 404');
  });

  it('serves nothing but the listed files, however the path is spelled', async () => {
    const secret = /"name": "mqttkit"|export class|"esp8266": \[|root:x:0:0|print\(|"pid":|HomeKit device with/;
    const paths = [
      '/device/ports.json',
      '/device/examples/switch.py',
      '/device/../package.json',
      '/device/%2e%2e/package.json',
      '/device/%2e%2e/%2e%2e/package.json',
      '/device/mqttkit/../../../package.json',
      '/device/mqttkit/%2e%2e/%2e%2e/%2e%2e/package.json',
      '/device/mqttkit%2f..%2f..%2f..%2fpackage.json',
      '/device/..%2f..%2f..%2fpackage.json',
      '/device/..%5c..%5c..%5cpackage.json',
      '/device/%252e%252e/%252e%252e/package.json',
      '/device/mqttkit/..;/..;/ports.json',
      '/device/esp32/../ports.json',
      '/device/esp32/%2e%2e/%2e%2e/%2e%2e/src/web/server.ts',
      '/device/./ports.json',
      '/device//ports.json',
      '/device/mqttkit/./../ports.json',
      '/device/mqttkit/device.py/../../ports.json',
      '/device/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
      '/device/mqttkit/device.py%00.json',
      '/device/mqttkit/__pycache__/x.pyc',
      `http://127.0.0.1:${port}/device/../../package.json`,
      '/device/examples%2fswitch.py',
      '/device/esp32/examples/switch.py',
    ];
    const leaks: string[] = [];
    for (const path of paths) {
      const response = await get(path);
      if (response.status === 200 || secret.test(response.body)) leaks.push(`${path} → ${response.status} ${response.body.slice(0, 80)}`);
    }
    assert.deepEqual(leaks, []);
    assert.equal((await get('/device/mqttkit/device.py')).status, 200, 'the check can pass: a listed file is served');
    const foreign = await rawRequest(port, { path: '/device/package.json', headers: { host: `evil.example:${port}` } });
    assert.equal(foreign.status, 403, 'the Host allowlist (DNS rebinding) still applies');
  });

  it("each port's package, as served, imports cleanly under MicroPython", async () => {
    for (const [name] of Object.entries(PORTS)) {
      const pkg = JSON.parse((await get(`/device/${name}/package.json`)).body) as MipPackage;
      let output = '';
      const mp = await loadMicroPython({ stdout: (line: string) => (output += `${line}\n`), stderr: (line: string) => (output += `${line}\n`) });
      mp.FS.mkdirTree('/lib');
      for (const [stub, text] of Object.entries(STUBS)) mp.FS.writeFile(`/lib/${stub}`, text);
      for (const [dest, url] of pkg.urls) {
        const folder = dest.split('/').slice(0, -1).join('/');
        if (folder) mp.FS.mkdirTree(`/lib/${folder}`);
        mp.FS.writeFile(`/lib/${dest}`, (await fetchBytes(url)).toString('utf8'));
      }
      const modules = pkg.urls
        .map(([dest]) => dest)
        .filter((d) => d.endsWith('.py'))
        .map((d) =>
          d
            .slice(0, -3)
            .replace(/\/__init__$/, '')
            .replace(/\//g, '.'),
        );
      assert.ok(modules.length > 0);
      // The names go in as Python literals: the WebAssembly build's globals.set crashed now and then
      // ("memory access out of bounds") when a second instance ran in the same process.
      try {
        mp.runPython(`
import sys
sys.path.insert(0, '/lib')
import machine
machine.PORT = ${JSON.stringify(name)}
modules = ${JSON.stringify(modules)}
for m in modules:
    __import__(m)
print('imported', len(modules))
`);
      } catch (error) {
        assert.fail(`${name}: the package does not import under MicroPython:\n${(error as Error).message}\n${output}`);
      }
      assert.match(output, new RegExp(`imported ${modules.length}`), output);
    }
  });
});
