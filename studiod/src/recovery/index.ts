/** Recovery: restore (and the archive restore requests); its error codes. */
export * from './errors.js';
export * from './restore-plan.js';
export * from './restore-records.js';
export * from './restore.js';
export * from './restore-format.js';
