/** Recovery: make a lost local copy again (remake-copy), the quarantine, target availability, RECOVERY_ errors. */
export * from './errors.js';
export * from './quarantine.js';
export * from './remake-copy.js';
export * from './target-availability.js';
