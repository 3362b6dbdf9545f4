export * from './errors.js';
export * from './config.js';
export * from './hash.js';
export * from './policy.js';
export * from './limits.js';
export * from './messages.js';
