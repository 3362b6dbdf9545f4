/** Copying a card: the offloader, naming, progress, recovery of interrupted runs, the field-drive back-fill, verify, eject and forget. */
export * from './backfill.js';
export * from './durable-failures.js';
export * from './eject.js';
export * from './forget-card.js';
export * from './naming.js';
export * from './offload-card.js';
export * from './offloader.js';
export * from './recovery.js';
export * from './space.js';
export * from './verify-card.js';
export * from './ingest-folder.js';
export * from './rename-template.js';
