/** The Host-name rules ([A-5]) and the OTA size option ([A-6]): parsing, canonical forms, option sources. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { OptionError, resolveStartOption, resolveStartOptions } from '../../src/cli/options.js';
import { fileSizeProblem, formatSize, parseSize } from '../../src/ota/file-size.js';
import { HostAllowlist, hostHeaderName } from '../../src/web/allowed-hosts.js';

const dir = mkdtempSync(join(tmpdir(), 'mqttkit-web-inputs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('Host headers', () => {
  it('reads the name from every form a browser sends, ignoring the port', () => {
    const cases: Array<[string, string | undefined]> = [
      ['hub.example', 'hub.example'],
      ['Hub.Example:8581', 'hub.example'],
      ['hub.example.', 'hub.example'],
      ['192.168.1.10:80', '192.168.1.10'],
      ['[::1]', '::1'],
      ['[::1]:8581', '::1'],
      ['[0:0:0:0:0:0:0:1]:1', '::1'],
      ['[FE80::1%25eth0]:8581', 'fe80::1'],
      ['', undefined],
      ['[::1', undefined],
      ['::1', undefined],
      ['a b', undefined],
      ['hub.example:80:80', undefined],
      ['x@hub.example', undefined],
      ['hub.example:', undefined],
      ['hub.example:123456', undefined],
      [`${'a'.repeat(300)}.example`, undefined],
      ['..', undefined],
    ];
    for (const [header, name] of cases) assert.equal(hostHeaderName(header), name, JSON.stringify(header));
  });

  it("allows the machine's own names and the added ones, nothing else", () => {
    const list = new HostAllowlist('0.0.0.0', ['hub.example', 'fd00::5']);
    for (const ok of ['localhost:1', '127.0.0.1', '[::1]', hostname(), `${hostname()}.local:8581`, 'HUB.EXAMPLE', '[fd00:0::5]:80'])
      assert.ok(list.allows(ok), ok);
    for (const no of ['evil.example', 'localhost.evil.example', '0.0.0.0', '[::]', undefined, 'hub.example.evil']) assert.ok(!list.allows(no), String(no));
    assert.ok(new HostAllowlist('hub.lan', []).allows('hub.lan:8581'), '--http-host as a name counts');
  });
});

describe('OTA file sizes', () => {
  it('parses sizes with binary units and formats them back', () => {
    const cases: Array<[string, number | undefined]> = [
      ['65536', 65536],
      ['512k', 512 * 1024],
      ['512K', 512 * 1024],
      ['16M', 16 * 1024 ** 2],
      ['16MiB', 16 * 1024 ** 2],
      ['16 mb', 16 * 1024 ** 2],
      ['1.5m', 1.5 * 1024 ** 2],
      ['1G', 1024 ** 3],
      ['', undefined],
      ['16X', undefined],
      ['-1M', undefined],
      ['1e9', undefined],
      ['99999999999', undefined],
    ];
    for (const [text, bytes] of cases) assert.equal(parseSize(text), bytes, text);
    assert.deepEqual([100, 1024, 512 * 1024, 16 * 1024 ** 2, Math.round(20.1 * 1024 ** 2)].map(formatSize), [
      '100 B',
      '1 KiB',
      '512 KiB',
      '16 MiB',
      '20.1 MiB',
    ]);
    assert.equal(
      fileSizeProblem('firmware.bin', Math.round(20.1 * 1024 ** 2), 16 * 1024 ** 2),
      'firmware.bin is 20.1 MiB, over the OTA limit of 16 MiB (--ota-max-file-size)',
    );
    assert.equal(fileSizeProblem('main.py', 16 * 1024 ** 2, 16 * 1024 ** 2), undefined);
  });
});

describe('start options for the web', () => {
  it('defaults to 16 MiB and no added names', () => {
    const { hub } = resolveStartOptions({ dataDir: dir }, {});
    assert.equal(hub.otaMaxFileSize, 16 * 1024 ** 2);
    assert.deepEqual(hub.httpAllowedHosts, []);
  });

  it('reads both from flags, variables and config.json (a list or a comma-separated string)', () => {
    assert.deepEqual(resolveStartOptions({ dataDir: dir, httpAllowedHosts: 'a.example, B.example.' }, {}).hub.httpAllowedHosts, ['a.example', 'b.example']);
    assert.equal(resolveStartOptions({ dataDir: dir }, { MQTTKIT_OTA_MAX_FILE_SIZE: '512k' }).hub.otaMaxFileSize, 512 * 1024);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ httpAllowedHosts: ['nas.lan', '[fd00::1]'], otaMaxFileSize: 1048576 }));
    const { hub } = resolveStartOptions({ dataDir: dir }, {});
    assert.deepEqual(hub.httpAllowedHosts, ['nas.lan', 'fd00::1']);
    assert.equal(hub.otaMaxFileSize, 1024 ** 2);
    assert.equal(resolveStartOption<number>('otaMaxFileSize', undefined, dir, {}), 1024 ** 2, 'the CLI reads the same file');
    assert.equal(resolveStartOption<number>('otaMaxFileSize', '2M', dir, {}), 2 * 1024 ** 2, 'its flag wins');
    rmSync(join(dir, 'config.json'));
  });

  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ otaMaxFileSize: '1k' }, /--ota-max-file-size: '1k' is not valid; expected a size from 4KiB to 256MiB/],
    [{ otaMaxFileSize: '1G' }, /--ota-max-file-size: '1G' is not valid/],
    [{ otaMaxFileSize: 'big' }, /--ota-max-file-size: 'big' is not valid/],
    [{ httpAllowedHosts: 'ok.example,not ok' }, /--http-allowed-hosts: 'ok.example,not ok' is not valid; expected more names/],
    [{ httpAllowedHosts: 'http://hub.example' }, /--http-allowed-hosts/],
  ];
  for (const [flags, message] of bad) {
    it(`refuses ${JSON.stringify(flags)}`, () => {
      assert.throws(
        () => resolveStartOptions({ dataDir: dir, ...flags }, {}),
        (error: Error) => error instanceof OptionError && message.test(error.message),
      );
    });
  }
});
