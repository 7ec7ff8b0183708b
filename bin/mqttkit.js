#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 node --max-semi-space-size=8 --optimize-for-size
// Memory (issue 13; `npm start` passes the same, test hubs read them from this line):
// --optimize-for-size: V8 grows its old generation in smaller steps and gives pages back sooner; the V8 heap
//   held 65 MB for 52 MB in use at the end of the 500-device load, ~12 MB less RSS with it (133-137 MB
//   against 141-154 MB), CPU within the runs' spread (docs/benchmarks.md).
// --max-semi-space-size=8: without a cap V8's young generation grows to 3 x 16 MiB under a busy hub's
//   garbage (~25 MB of RSS); --optimize-for-size alone holds it at 1 MiB, collected ~30 times a second
//   under the 500-device load, and what survives fills the old generation, whose pauses (up to ~15 ms)
//   were the load's p99. 8 lets it reach 2 MiB: half the scavenges, the same RSS.
// MALLOC_ARENA_MAX=2: glibc gives each thread (libuv's pool, the hashing thread) its own malloc arena,
//   which keeps what it once held; two arenas keep ~15 MB away under a 500-device load.
// MALLOC_MMAP_THRESHOLD_=131072: each device's first login hashes its password with scrypt (16 MiB of
//   scratch); glibc raises its mmap threshold after the first such block is freed and keeps the later
//   ones in the heap for good (~30 MB after a fleet registers). A fixed threshold returns them at once.
// Thin launcher: the CLI lives in TypeScript and is compiled to dist/ by `npm install` (prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  console.error('mqttkit is not built yet: run `npm install` (or `npm run build`) in the mqttkit folder first.');
  process.exit(1);
}
await import(entry.href);
