/** The agent state (LevelDB): cards, files, assets and their copies; safe to format; the status summary; damaged laptop copies. */
export * from './agent-state.js';
export * from './free-laptop.js';
export * from './records.js';
export * from './safe-to-format.js';
export * from './status.js';
export * from './summary.js';
export * from './store-copy.js';
export * from './card-report.js';
export * from './status-snapshot.js';
