/**
 * Agents' link: the TLS WebSocket server, one session (a state machine) per connection, the file
 * receiver behind it, live chunk files, the TLS identity.
 */
export * from './chunk-receive.js';
export * from './file-receiver.js';
export * from './server.js';
export * from './session.js';
export * from './tls-identity.js';
export * from './pairing-throttle.js';
export * from './pre-auth-guard.js';
export * from './memory-budget.js';
export * from './fair-scheduler.js';
export * from './small-slabs.js';
