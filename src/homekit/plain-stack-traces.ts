/**
 * HAP-NodeJS registers source-map-support when it loads. From then on, every stack trace the hub
 * formats (a logged error, a failed request) parses the source maps of the files in it and keeps them,
 * and their files, in memory: ~5 MB of the hub's heap and milliseconds on the event loop at the first
 * trace of each file (issue 13). The hub's stack traces point at dist/ as Node's own do; run with
 * `node --enable-source-maps` for TypeScript positions.
 */
import 'hap-nodejs';

// Imported after hap-nodejs evaluated (it is this module's dependency): the hook is the one it installed.
delete (Error as { prepareStackTrace?: unknown }).prepareStackTrace;
