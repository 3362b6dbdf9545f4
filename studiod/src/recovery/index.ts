/** Recovery: restore and the archive restore requests; catalogue snapshots, the rebuild, the pairing store, the empty-catalogue refusal; remake-copy, the quarantine, target availability. */
export * from './errors.js';
export * from './restore-plan.js';
export * from './restore-records.js';
export * from './restore.js';
export * from './restore-format.js';
export * from './pairing-store.js';
export * from './target-files.js';
export * from './snapshot-format.js';
export * from './snapshot.js';
export * from './rebuild.js';
export * from './start-check.js';
export * from './format.js';
export * from './quarantine.js';
export * from './remake-copy.js';
export * from './target-availability.js';
export * from './adopt.js';
export * from './mhl-copy.js';
