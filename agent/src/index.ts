/**
 * The field agent's public API. The root holds what every layer shares (errors, config,
 * paths, targets, the instance lock) and the runner that wires the layers together; each
 * concern has its own entry point: `@studio321/agent/card`, `/state`, `/offload`, `/link`, `/ui`.
 */
export * from './errors.js';
export * from './config.js';
export * from './paths.js';
export * from './disk-identity.js';
export * from './targets.js';
export * from './instance-lock.js';
export * from './runner.js';
