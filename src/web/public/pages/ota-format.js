// How the Updates page writes sizes, speeds, times and durations, and how it measures a transfer's
// speed from the job progress the live stream brings (docs/api.md: `jobs` events).

/** 1536 → "1.5 KiB". */
export function bytes(n) {
  if (!Number.isFinite(n)) return '–';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** 75 → "1 min 15 s". */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** A moment as the jobs table shows it: the time today, else the date and time. */
export function when(t) {
  if (t == null) return '–';
  const d = new Date(t);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

/**
 * Speed and time left per job, from the bytes it reported and when the page saw them. The speed is
 * measured over the last few seconds (a window, so a stall shows as it happens, not averaged away).
 */
export class TransferMeter {
  #samples = new Map(); // job id → [{t, bytes}]

  /** Records a job's progress; returns `{speed (bytes/s) | null, left (s) | null}`. */
  see(job, now = Date.now()) {
    const p = job.progress;
    if (!p || job.state !== 'running' || !p.bytesTotal) {
      this.#samples.delete(job.id);
      return { speed: null, left: null };
    }
    let list = this.#samples.get(job.id);
    // A new file of a sync starts its own count: begin the window again.
    if (!list || p.bytes < list[list.length - 1].bytes) list = [];
    if (!list.length || list[list.length - 1].bytes !== p.bytes) list.push({ t: now, bytes: p.bytes });
    while (list.length > 2 && now - list[0].t > 5000) list.shift();
    this.#samples.set(job.id, list);
    if (list.length < 2) return { speed: null, left: null };
    const first = list[0];
    const last = list[list.length - 1];
    // Time since the first sample until now: if the bytes stopped, the speed falls.
    const seconds = (now - first.t) / 1000;
    if (seconds <= 0) return { speed: null, left: null };
    const speed = (last.bytes - first.bytes) / seconds;
    const left = speed > 0 ? (p.bytesTotal - p.bytes) / speed : null;
    return { speed, left };
  }
}
