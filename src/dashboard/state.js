// @ts-check
/**
 * The dashboard's mutable state, all in one place: the panels read and change it here.
 * @import { Job, JobState } from '../contract/job.ts'
 * @import { LossHistory } from './curves.js'
 */

/**
 * The job the job panel shows, as its event stream has told it so far.
 * @typedef {LossHistory & { id: string, state: JobState, events: EventSource | null, drawPending: boolean }} FollowedJob
 */

/** @typedef {{ experimentId: string } | { jobIds: string[] }} ComparisonSpec */

/**
 * What the comparison panel shows, with each of its jobs as last read, and its next refresh.
 * @typedef {ComparisonSpec & { jobs: Map<string, Job>, timer: number | null }} Comparison
 */

export const state = {
  /** The job panel's job; null while the panel is closed. @type {FollowedJob | null} */
  job: null,
  /** The comparison panel's; null while it is closed. @type {Comparison | null} */
  comparison: null,
  /** Jobs ticked in the list, to compare side by side. @type {Set<string>} */
  ticked: new Set(),
  /** Data set names by the id jobs name them by (an uploaded data set's is a UUID), from GET /datasets. @type {Map<string, string>} */
  datasetNames: new Map(),
};

/** @param {string} id */
export const datasetName = (id) => state.datasetNames.get(id) ?? id;
