/** How a job's steps end it: a failure with the job's end state, or the device dropping mid-job. [O-9] [O-14] */
import type { JobState } from '../store/ota-store.js';

/** The job ends with this message and state (`failed` unless said otherwise). */
export class JobFailure extends Error {
  constructor(
    message: string,
    readonly state: JobState = 'failed',
  ) {
    super(message);
  }
}

/** [O-14] The device left `online` during a step that needs it connected: the job waits for it and resumes. */
export class DeviceDropped extends Error {
  constructor(readonly step: string) {
    super(`the device left during ${step}`);
  }
}
