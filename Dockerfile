# mqttkit in a container (docs/service.md). Build: `docker build -t mqttkit .`; run it with compose.yaml
# (host networking: HomeKit pairing needs mDNS on your LAN) or:
#   docker run -d --name mqttkit --network host -v mqttkit-data:/data mqttkit
# Options go after the image name (`… mqttkit start --http-tls auto`) or as MQTTKIT_* variables.

# Stage 1: build with the dev dependencies (TypeScript), then keep only what the npm package ships.
FROM node:20-slim AS build
# better-sqlite3 compiles from source when no prebuilt binary fits this platform.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY . .
# The package exactly as `npm pack` makes it (package.json "files"), unpacked to /app, with the
# production dependencies only (native ones built for this image).
RUN npm run build \
  && npm rebuild better-sqlite3 \
  && npm prune --omit=dev \
  && npm pack --ignore-scripts --pack-destination /tmp \
  && mkdir /app \
  && tar -xzf /tmp/mqttkit-*.tgz --strip-components=1 -C /app \
  && cp -r node_modules /app/node_modules

# Stage 2: the runtime, Node 20 slim, no compilers, no dev dependencies, not root.
FROM node:20-slim
ENV NODE_ENV=production \
  MQTTKIT_DATA_DIR=/data \
  MALLOC_ARENA_MAX=2 \
  MALLOC_MMAP_THRESHOLD_=131072
RUN groupadd --system --gid 10001 mqttkit \
  && useradd --system --uid 10001 --gid mqttkit --home-dir /data --no-create-home mqttkit \
  && mkdir -p /data \
  && chown mqttkit:mqttkit /data \
  && chmod 700 /data
COPY --from=build /app /app
WORKDIR /data
USER mqttkit
# HomeKit keys, pairings, the database and the setup code: keep this volume, back it up (docs/service.md).
VOLUME ["/data"]
# MQTT, MQTT over TLS (with --mqtts-port), the dashboard and API, HomeKit (bridge n on 51826 + n).
EXPOSE 1883 8883 8581 51826
# /api/health at the address and scheme the running hub wrote in /data/hub.json (any --http-port). HTTPS:
# the served certificate's SHA-256 must be the one hub.json names, compared right after the handshake and
# before the request is written; no chain, name or date is asked (a private CA's leaf, an expired one pass).
# Node itself: the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "const fs = require('node:fs'); const dir = process.env.MQTTKIT_DATA_DIR || '/data'; const hub = JSON.parse(fs.readFileSync(dir + '/hub.json', 'utf8')); const pin = hub.httpTls && hub.httpTls.fingerprint256; const host = ['0.0.0.0', '::', undefined].includes(hub.httpHost) ? '127.0.0.1' : hub.httpHost; const pinned = (o, done) => { const s = require('node:tls').connect({ host, port: hub.httpPort, rejectUnauthorized: false }); s.once('secureConnect', () => { if (s.getPeerCertificate().fingerprint256 === pin) return done(null, s); s.destroy(); process.exit(1); }); s.once('error', () => process.exit(1)); }; require('node:http').get({ host, port: hub.httpPort, path: '/api/health', timeout: 4000, ...(pin ? { createConnection: pinned } : {}) }, (res) => process.exit(res.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1)).on('timeout', () => process.exit(1));"]
ENTRYPOINT ["node", "--max-semi-space-size=8", "--optimize-for-size", "/app/bin/mqttkit.js"]
CMD ["start"]
