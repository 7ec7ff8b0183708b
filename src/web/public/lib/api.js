// The hub's JSON API (docs/api.md): every failure becomes an Error whose message says what went wrong,
// for the page to show next to the action that failed.
const PUBLIC = ['/api/login', '/api/setup', '/api/session'];

export async function api(path, options = {}) {
  let response;
  try {
    // No content type without a body: Fastify refuses an empty JSON body (a DELETE would answer 400).
    const type = options.body === undefined ? {} : { 'content-type': 'application/json' };
    response = await fetch(path, { ...options, headers: { ...type, ...(options.headers || {}) } });
  } catch {
    throw new Error('the hub did not answer: is it running, and is this network reaching it?');
  }
  const body = await response.json().catch(() => ({}));
  if (response.status === 401 && !PUBLIC.some((p) => path.startsWith(p))) {
    location.hash = '#/login';
    throw new Error(body.error || 'log in first');
  }
  if (!response.ok) throw Object.assign(new Error(body.error || `the hub answered ${response.status}`), { status: response.status });
  return body;
}

export const post = (path, body) => api(path, { method: 'POST', body: JSON.stringify(body ?? {}) });
export const del = (path) => api(path, { method: 'DELETE' });
/** `/api/devices/<id>` with the id escaped. */
export const devicePath = (id, rest = '') => `/api/devices/${encodeURIComponent(id)}${rest}`;
