/** Committing a received file: staging, the two-target commit, target checks. */
export * from './commit.js';
export * from './durable-failures.js';
export * from './staging.js';
export * from './target-check.js';
export * from './mhl-history.js';
export * from './small-commit.js';
export * from './folder-intents.js';
export * from './staged-read.js';
