/**
 * @studio321/protocol/base — what every program needs to start: coded errors and exit statuses,
 * command lines, config files, logs, sizes and progress lines, and LevelDB's chained batch (the
 * agent's state writes with it). No wire code (codec, schema, messages, hashing, auth): a command
 * that never talks to the studio (`field-agent status`) loads these nine modules instead of the
 * twenty of the whole barrel, which re-exports them.
 */
export * from './errors.js';
export * from './config.js';
export * from './log.js';
export * from './format.js';
export * from './progress.js';
export * from './exit-codes.js';
export * from './cli-args.js';
export * from './suggest.js';
export * from './level-batch.js';
