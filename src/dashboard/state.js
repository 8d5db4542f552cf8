// @ts-check
/**
 * The dashboard's mutable state, all in one place: the panels read and change it here.
 * @import { Base } from '../contract/bases.ts'
 * @import { ModelCatalog } from '../contract/catalog.ts'
 * @import { Job, JobState, JobSummary } from '../contract/job.ts'
 * @import { LossHistory } from './curves.js'
 */

/**
 * The job the job panel shows, as its event stream has told it so far, and its network once GET /jobs/:id answered.
 * @typedef {LossHistory & { id: string, state: JobState, model: string | null, events: EventSource | null, drawPending: boolean }} FollowedJob
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
  /** The networks and their built-in bases, from GET /models. @type {ModelCatalog['models']} */
  models: [],
  /** The client's uploaded bases, newest first, from GET /bases. @type {Base[]} */
  bases: [],
  /** The jobs of the list, newest first, as last polled: the form starts from the completed ones. @type {JobSummary[]} */
  jobs: [],
};

/** @param {string} id */
export const datasetName = (id) => state.datasetNames.get(id) ?? id;

/**
 * The name of the client's uploaded base with this id, if it is one.
 * @param {string} id
 */
export const baseName = (id) => state.bases.find((base) => base.id === id)?.name;
