/**
 * Edges of the standby hub found by a hostile review: the standby's redirect never leaves the active
 * instance's origin ([H-3]); a database URL's password is hidden wherever pg takes it ([D-10]).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sameOriginTarget } from '../../src/hub/clustered-hub.js';
import { redactSecret, redactUrl } from '../../src/store/engine/sql-engine.js';

describe('the standby sends people to the active instance, and only there', () => {
  const active = 'http://hub-a.local:8581';
  for (const [request, expected] of [
    ['/', 'http://hub-a.local:8581/'],
    ['/#/devices', 'http://hub-a.local:8581/#/devices'],
    ['/api/devices?x=1', 'http://hub-a.local:8581/api/devices?x=1'],
    ['//evil.example/x', 'http://hub-a.local:8581/'],
    ['/\\evil.example/x', 'http://hub-a.local:8581/'],
    ['/\\\\evil.example', 'http://hub-a.local:8581/'],
    ['http://evil.example/x', 'http://hub-a.local:8581/'],
    ['/%2F%2Fevil.example', 'http://hub-a.local:8581/%2F%2Fevil.example'],
  ])
    it(`${request} → ${expected}`, () => assert.equal(sameOriginTarget(request, active), expected));
});

describe('database URLs as they may be shown', () => {
  it('hides the password in the user part and in query parameters', () => {
    const url = 'postgres://hub:s3cret-1@db.local:5432/mqttkit?sslmode=require&password=other-s3cret&sslpassword=k3y';
    const shown = redactUrl(url);
    assert.doesNotMatch(shown, /s3cret|k3y/);
    assert.match(shown, /db\.local:5432\/mqttkit/);
    assert.match(shown, /sslmode=require/);
    assert.doesNotMatch(redactSecret(`connect failed for ${url} (password other-s3cret)`, url), /s3cret|k3y/);
    assert.doesNotMatch(redactSecret('auth failed: other-s3cret', 'postgres://hub@db.local/mqttkit?password=other-s3cret'), /s3cret/);
  });
});
