/** Committing a received file: staging, the two-target commit, target checks. */
export * from './commit.js';
export * from './staging.js';
export * from './target-check.js';
