/** The pairing QR code, as SVG for the dashboard or text for a terminal. qrcode is loaded on the first one: a paired hub never carries it. */
export async function qrCode(text: string, type: 'svg' | 'terminal'): Promise<string> {
  const { default: QRCode } = await import('qrcode');
  return type === 'svg' ? QRCode.toString(text, { type: 'svg', margin: 2 }) : QRCode.toString(text, { type: 'terminal', small: true });
}
