/** OTA jobs through the running hub's API, for commands that queue and follow them (conformance). */
import { readFileSync } from 'node:fs';
import type { HubJobs } from '../conformance/context.js';
import { readManifest } from '../ota/manifest.js';
import { FINISHED, type Job } from '../store/ota-store.js';
import type { HubClient } from './hub-client.js';

/** How long an upload (up to the OTA cap) may take to reach the hub and be saved. */
export const UPLOAD_MS = 120_000;

export function hubJobs(hub: HubClient): HubJobs {
  const job = (id: number) => hub.ok<Job>('GET', `/api/ota/jobs/${id}`);
  return {
    async queue(kind, device, spec) {
      const base64 = (file: unknown) => readFileSync(String(file)).toString('base64');
      const [path, body] =
        kind === 'push'
          ? ['/api/ota/push', { device, file: { path: String(spec.as), content: base64(spec.file) }, reboot: spec.reboot !== false }]
          : kind === 'sync'
            ? ['/api/ota/sync', { device, files: readManifest(String(spec.manifest)).map((e) => ({ path: e.path, content: base64(e.local) })) }]
            : ['/api/ota/firmware', { device, image: base64(spec.image) }];
      return (await hub.ok<{ job: number }>('POST', path, body, UPLOAD_MS)).job;
    },
    async finished(id, ms) {
      let last: Job | undefined;
      await hub.stream(
        '',
        async (event, data) => {
          if (event === 'hello') last = await job(id);
          else if (event === 'job' && (data as Job).id === id) last = data as Job;
          return last !== undefined && FINISHED.includes(last.state);
        },
        ms,
      );
      return last && FINISHED.includes(last.state) ? last : job(id);
    },
    async cancel(id, by) {
      await hub.call('POST', `/api/ota/jobs/${id}/cancel`, { by });
    },
  };
}
