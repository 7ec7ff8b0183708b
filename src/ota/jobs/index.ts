/** The job kinds, one file each: the runner looks a job's steps up here by its kind. */
import type { JobKind } from '../../store/ota-store.js';
import type { JobContext } from '../job-context.js';
import { firmware } from './firmware.js';
import { push } from './push.js';
import { sync } from './sync.js';

/** A job kind's steps: resolves with the job's success message, or throws its end (JobFailure, a drop). */
export type JobSteps = (ctx: JobContext) => Promise<string>;

export const JOB_KINDS: Readonly<Record<JobKind, JobSteps>> = { push, sync, firmware };
