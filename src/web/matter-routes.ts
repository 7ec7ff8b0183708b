/**
 * The Matter bridge on the dashboard (docs/matter.md, docs/api.md): its pairing codes with a QR code,
 * commissioning state and fabrics, and removing a fabric (a controller's access): a state change, so
 * not for an API token ([A-9]) and from a browser only from the dashboard's own origin (the guard, [A-2]) (see [M-8]).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { MatterControl } from '../matter/status.js';
import { refuseApiToken } from './admin-routes.js';
import { qrCode } from './qr-code.js';

const status = (code: number, message: string) => Object.assign(new Error(message), { statusCode: code });
/** Fabric indexes are 1–254 (Matter Core 11.18.5.3). */
const fabricParams = z.object({ fabricIndex: z.coerce.number().int().min(1).max(254) });

export function matterRoutes(app: FastifyInstance, matter: () => MatterControl | undefined): void {
  app.get('/api/matter', async () => {
    const bridge = matter();
    if (!bridge) return { enabled: false };
    const s = bridge.status();
    return { enabled: true, ...s, qrSvg: await qrCode(s.qrPayload, 'svg') };
  });

  app.delete<{ Params: { fabricIndex: string } }>('/api/matter/fabrics/:fabricIndex', async (request) => {
    refuseApiToken(request);
    const { fabricIndex } = fabricParams.parse(request.params);
    const bridge = matter();
    if (!bridge) throw status(409, 'Matter is off: start the hub with --matter');
    if (!(await bridge.removeFabric(fabricIndex))) throw status(404, `no Matter fabric ${fabricIndex}`);
    return { removed: fabricIndex };
  });
}
