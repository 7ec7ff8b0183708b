#!/usr/bin/env node
// Thin launcher: the CLI lives in TypeScript and is compiled to dist/ by `npm install` (prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  console.error('mqttkit is not built yet: run `npm install` (or `npm run build`) in the mqttkit folder first.');
  process.exit(1);
}
await import(entry.href);
