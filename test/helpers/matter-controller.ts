/**
 * matter.js's own controller, as a test's (or the bench's) stand-in for Google Home or Apple Home: a
 * ServerNode with the controller behaviour, its fabric in a temp dir, commissioning the hub at a known
 * loopback address (no mDNS discovery needed, docs/matter.md) with the pairing code the hub shows.
 */
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientNode, Endpoint, ServerNode } from '@matter/main';

/** A free UDP port on loopback (bound, read, released). */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

export interface MatterStatusBody {
  enabled: boolean;
  port?: number;
  manualCode?: string;
  qrPayload?: string;
  commissioned?: boolean;
  fabrics?: Array<{ fabricIndex: number; label: string; vendorId: number }>;
  devices?: number;
  qrSvg?: string;
}

/** `GET /api/matter` with the hub's local token (the CLI's way in). */
export async function matterStatus(dataDir: string, httpPort: number): Promise<MatterStatusBody> {
  const token = readFileSync(join(dataDir, 'hub-token'), 'utf8').trim();
  const response = await fetch(`http://127.0.0.1:${httpPort}/api/matter`, { headers: { authorization: `Bearer ${token}` } });
  if (!response.ok) throw new Error(`GET /api/matter: ${response.status} ${await response.text()}`);
  return (await response.json()) as MatterStatusBody;
}

export interface MatterController {
  node: ServerNode;
  /** Commissions the hub at 127.0.0.1:port with its manual pairing code; returns the peer. */
  commission(port: number, pairingCode: string): Promise<ClientNode>;
  /** The peer commissioned earlier (kept in the controller's storage). */
  peer(): ClientNode | undefined;
  close(): Promise<void>;
}

let configured = false;

export async function startMatterController(storageDir: string): Promise<MatterController> {
  // The controller is the test's own, independent of the hub's code: its matter.js set up here, before
  // matter.js first loads (no reading of the test runner's argv or environment, no signal traps).
  const { config } = await import('@matter/nodejs/config');
  if (!configured) {
    configured = true;
    Object.assign(config, {
      loadProcessArgv: false,
      loadProcessEnv: false,
      loadConfigFile: false,
      trapProcessSignals: false,
      trapUnhandledErrors: false,
      setProcessExitCodeOnError: false,
    });
  }
  const { Environment, Logger, LogLevel, ServerNode } = await import('@matter/main');
  const { ControllerBehavior } = await import('@matter/main/node');
  Logger.level = LogLevel.ERROR;
  Environment.default.vars.set('storage.path', storageDir);
  const node = await ServerNode.create(ServerNode.RootEndpoint.with(ControllerBehavior), {
    id: 'test-controller',
    network: { port: 0 },
    controller: { ip: true, ble: false },
  });
  await node.start();
  return {
    node,
    async commission(port, pairingCode) {
      const peer = await node.peers.forDescriptor({ addresses: [{ type: 'udp', ip: '127.0.0.1', port }] });
      await peer.commission({ pairingCode });
      return peer;
    },
    peer: () => [...node.peers][0],
    close: () => node.close(),
  };
}

/** Every endpoint under `root`, depth first. */
export function allEndpoints(root: Endpoint): Endpoint[] {
  const out: Endpoint[] = [];
  for (const part of root.parts) out.push(part, ...allEndpoints(part));
  return out;
}

/** The bridged node of device `id` (its serial number is the device id) and its children. */
export function bridgedDevice(peer: ClientNode, id: string): { node: Endpoint; children: Endpoint[] } | undefined {
  for (const endpoint of allEndpoints(peer)) {
    const state = endpoint.state as Record<string, { serialNumber?: string } | undefined>;
    if (state.bridgedDeviceBasicInformation?.serialNumber === id) return { node: endpoint, children: allEndpoints(endpoint) };
  }
  return undefined;
}

/** A cluster's state on an endpoint, untyped (the test names the attributes it reads). */
export function clusterState(endpoint: Endpoint, cluster: string): Record<string, unknown> | undefined {
  return (endpoint.state as Record<string, Record<string, unknown> | undefined>)[cluster];
}

/** One attribute read from the peer now (not from the subscription's cache): what a controller does when it polls. */
export async function readAttribute(
  peer: ClientNode,
  endpoint: number,
  cluster: 'temperatureMeasurement' | 'onOff' | 'basicInformation',
  attribute: string,
): Promise<unknown> {
  const { Read } = await import('@matter/main/protocol');
  const clusters = await import('@matter/main/clusters');
  const spec = cluster === 'temperatureMeasurement' ? clusters.TemperatureMeasurement : cluster === 'onOff' ? clusters.OnOff : clusters.BasicInformation;
  let value: unknown;
  // matter.js's selector types are per cluster; the attribute is named by the caller.
  const request = Read(Read.Attribute({ endpoint, cluster: spec, attributes: [attribute] } as never));
  for await (const chunk of peer.interaction.read(request)) {
    for await (const report of chunk) if (report.kind === 'attr-value') value = report.value;
  }
  return value;
}
