#!/usr/bin/env -S node --max-semi-space-size=2
// --max-semi-space-size=2: V8's young generation grows to 3 x 16 MiB under a busy hub's garbage; 2 MiB
// keeps ~40 MB of RSS away with no measured cost in CPU or latency (issue 13; `npm start` passes the same).
// Thin launcher: the CLI lives in TypeScript and is compiled to dist/ by `npm install` (prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  console.error('mqttkit is not built yet: run `npm install` (or `npm run build`) in the mqttkit folder first.');
  process.exit(1);
}
await import(entry.href);
