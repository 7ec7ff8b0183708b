/** What the dashboard, the API and the banner show of the Matter bridge (docs/api.md `GET /api/matter`). */
export interface MatterStatus {
  /** The UDP port the bridge listens on. */
  port: number | undefined;
  /** The 11-digit manual pairing code (what a person types). */
  manualCode: string;
  /** The QR code payload, `MT:…`. */
  qrPayload: string;
  /** At least one controller (fabric) has added the bridge. */
  commissioned: boolean;
  fabrics: Array<{ fabricIndex: number; label: string; vendorId: number }>;
  /** Devices shown as bridged nodes. */
  devices: number;
}

/** The Matter side as the web server sees it: its status, and removing a controller's fabric. */
export interface MatterControl {
  status(): MatterStatus;
  /** false: no fabric with that index. */
  removeFabric(fabricIndex: number): Promise<boolean>;
}
