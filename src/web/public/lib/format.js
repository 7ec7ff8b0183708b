// How values and times read on the page.
export const ago = (t) => {
  const s = Math.round((Date.now() - t) / 1000);
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : s < 86400 ? `${Math.round(s / 3600)}h ago` : `${Math.round(s / 86400)}d ago`;
};

export const show = (value) => (value === true ? 'on' : value === false ? 'off' : (value ?? '–'));

/** The short unit after a value in the devices table. */
export const unitMark = (unit) => (unit === 'celsius' ? '°' : unit === 'percentage' ? '%' : '');

/** `Switch/2` for a second switch, `Switch` for the first: how tests and screen readers find a service. */
export const serviceKey = (s) => `${s.service}${s.index ? '/' + s.index : ''}`;

/** A device log line as the log panel shows it. */
export const logLine = (line) => `${new Date(line.at).toLocaleTimeString()} ${line.text}`;

/** A picked file's bytes as base64, for the upload endpoints. */
export const fileToBase64 = (file) =>
  new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(',')[1] || '');
    reader.onerror = () => reject(new Error(`cannot read ${file.name}`));
    reader.readAsDataURL(file);
  });
