/**
 * The rules `mqttkit conformance` checks, one row each: the check's id, the doc rule it enforces, the
 * doc section, and what a device must do. One table, so it can be read against docs/protocol.md and
 * docs/ota.md. Ids are the doc rule with a suffix where one rule has several checks.
 */
export interface Rule {
  id: string;
  /** The numbered rule in the docs ([P-…] protocol.md, [O-…] ota.md); empty where the docs do not number it yet. */
  rule: string;
  section: string;
  title: string;
}

export const RULES = [
  { id: 'P-2', rule: '[P-2]', section: 'protocol.md §2', title: 'device id: 1-64 of A-Z a-z 0-9 _ -, not reserved' },
  { id: 'P-0', rule: '[P-0]', section: 'protocol.md §1', title: 'logs in as client id = username = device id, with its own registered password' },
  { id: 'P-12', rule: '[P-12]', section: 'protocol.md §3.3', title: 'retained $state is online while connected' },
  { id: 'P-20', rule: '[P-20]', section: 'protocol.md §3.3', title: '$keepalive, when promised, is 1-65535 seconds' },
  { id: 'P-11', rule: '[P-11]', section: 'protocol.md §3.2', title: 'metadata $name, $model, $firmware published, retained, at most 64 characters' },
  {
    id: 'P-9',
    rule: '[P-9]',
    section: 'protocol.md §3.1',
    title: 'a valid value for every service (known names [P-4] [P-6], valid values [P-9]); the hub refuses none',
  },
  { id: 'P-14', rule: '[P-14]', section: 'protocol.md §4.1', title: 'a /set write is confirmed on the state topic' },
  { id: 'P-1', rule: '[P-1]', section: 'protocol.md §1', title: 'last will: $state offline when the connection drops' },
  { id: 'P-19', rule: '[P-19]', section: 'protocol.md §3.3', title: 'publishes $state online after it reconnects' },
  { id: 'P-21', rule: '[P-21]', section: 'protocol.md §1, §6', title: 'listens before it says online: a command sent at online is answered' },
  { id: 'O-11', rule: '[O-11]', section: 'ota.md §3 (getversion), §6', title: 'getversion answers a JSON object with firmware and "ota": 2' },
  { id: 'cmd.stats', rule: '[O-22]', section: 'ota.md §3 (stats)', title: 'stats answers a JSON object with uptime_s, reconnects, published, received' },
  { id: 'cmd.msg_reboot', rule: '[O-20]', section: 'ota.md §3 (msg_reboot)', title: 'msg_reboot answers the last reboot reason' },
  {
    id: 'cmd.msg_exception',
    rule: '[O-20]',
    section: 'ota.md §3 (msg_exception)',
    title: 'msg_exception answers the last exception or "no exception recorded"',
  },
  { id: 'cmd.msg_rm', rule: '[O-20]', section: 'ota.md §3 (msg_rm)', title: 'msg_rm clears the records: msg_exception then says "no exception recorded"' },
  {
    id: 'O-6.partitions',
    rule: '[O-6] [O-21]',
    section: 'ota.md §3 (partitions), §3.1, §5.3',
    title: 'partitions answers {"count", "running"}, a label of 1-64 characters',
  },
  { id: 'cmd.hashes', rule: '[O-23]', section: 'ota.md §3 (hashes)', title: 'hashes answers a JSON object of path: sha1' },
  { id: 'cmd.unknown', rule: '[O-20]', section: 'ota.md §3', title: 'an unknown command answers "unknown command <name> …"' },
  { id: 'O-4', rule: '[O-4]', section: 'ota.md §3 (open)', title: 'open publishes {"address"} on stat/<id>/OTA' },
  { id: 'O-12', rule: '[O-12]', section: 'ota.md §3', title: 'a device that says "rid": 1 echoes "#<n> " before each answer' },
  { id: 'O-13.discard', rule: '[O-13]', section: 'ota.md §3 (discard), §4', title: 'discard answers {"discarded": [paths]}' },
  { id: 'O-3.report', rule: '[O-3]', section: 'ota.md §2.3', title: 'a good transfer is reported ok:true with its hash' },
  { id: 'O-5.staged', rule: '[O-5]', section: 'ota.md §2.2, §4', title: 'a staged file is not live before commit' },
  { id: 'O-3.bad-hash', rule: '[O-3]', section: 'ota.md §2.3', title: 'a transfer with a wrong hash is reported ok:false' },
  { id: 'O-13.commit', rule: '[O-13]', section: 'ota.md §3 (commit), §4', title: 'commit answers {"committed": [paths]}: exactly the staged files' },
  { id: 'O-1.bad-hash', rule: '[O-1]', section: 'ota.md §2.2', title: 'a wrong hash changes nothing: the live file keeps the good content' },
  { id: 'O-2', rule: '[O-2]', section: 'ota.md §2.1, §3.1', title: 'a trigger whose path climbs out (../) is refused with an ok:false report' },
  { id: 'O-16', rule: '[O-16]', section: 'ota.md §2.1', title: 'a device that lists "sha256" in getversion checks sha256:<hex> hashes' },
  { id: 'O-1.push', rule: '[O-1]', section: 'ota.md §5.1', title: 'ota push (commit and reboot) succeeds, the device comes back' },
  {
    id: 'O-5.sync',
    rule: '[O-5] [O-24]',
    section: 'ota.md §5.2, §3.1',
    title: 'ota sync (hashes, transfers, one into a new folder, commit, reboot, verify) succeeds',
  },
  { id: 'P-3', rule: '[P-3] [P-17]', section: 'protocol.md §3, §5', title: 'every payload under HomeKit/<id>/ is UTF-8 text of at most 1024 bytes' },
  {
    id: 'P-8',
    rule: '[P-8]',
    section: 'protocol.md §3.1',
    title: 'a service type is published either indexed (Switch/1/On) or unindexed (Switch/On), not both; indexes 1-99',
  },
  { id: 'P-22', rule: '[P-22]', section: 'protocol.md §3.2', title: "getversion's app, when given, is the $firmware the device publishes" },
  { id: 'O-7', rule: '[O-7]', section: 'ota.md §5', title: 'a sleeping device with a pending job serves it when it wakes, before it sleeps again' },
] as const satisfies readonly Rule[];

export type RuleId = (typeof RULES)[number]['id'];

export type Outcome = 'pass' | 'fail' | 'skip';

export interface RuleResult extends Rule {
  result: Outcome;
  /** Why it failed or was skipped; what was seen when it passed. */
  reason: string;
}

/**
 * The numbered rules no device can be checked against: they say what the hub does (or what a person
 * does with the CLI), so a device neither keeps nor breaks them. Every [P-…] and [O-…] rule of the docs
 * is either checked above or listed here with why (test/unit/conformance-rules.test.ts keeps it so).
 */
export const HUB_SIDE: Readonly<Record<string, string>> = {
  '[P-4]': 'names are checked inside the value check ([P-9]): a misspelt name is refused by the hub',
  '[P-5]': 'the hub creates accessories and services from the first values',
  '[P-6]': 'checked inside the value check ([P-9]): the hub refuses foreign characteristics',
  '[P-7]': 'checked inside the value check ([P-9]): the hub refuses AccessoryInformation and binary services',
  '[P-10]': 'the hub keeps the last good value',
  '[P-13]': "the hub's expiry (--device-ttl)",
  '[P-15]': 'the hub publishes $error (the value check fails on any)',
  '[P-16]': "the hub clears a removed device's retained topics",
  '[P-18]': "the embedded broker's flood limit (a device past it is disconnected, which the $state checks notice)",
  '[P-23]': 'what the hub sends to a sleeping or offline device',
  '[P-24]': 'the names the hub gives services',
  '[P-25]': 'what the hub keeps when a device is removed (removing the device under test is left to its author)',
  '[P-26]': "the hub's Home Assistant discovery configs, made from what a device already publishes (nothing for the device to do)",
  '[P-27]': 'the hub clears its own leftover Home Assistant discovery configs at start (nothing for the device to do)',
  '[O-8]': "rollouts are the hub's",
  '[O-9]': "how the hub ends jobs (the checker's own jobs end by it)",
  '[O-10]': "the hub's uploads folder",
  '[O-14]': 'the hub waits for a device that drops mid-job; provoking a drop mid-transfer is not reliable from outside',
  '[O-15]': 'a failed commit cannot be provoked on a healthy device',
  '[O-25]': "the CLI's manifest formats",
  '[O-26]': "a job's progress and timing, as the hub counts them",
};
