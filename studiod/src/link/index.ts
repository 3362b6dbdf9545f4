/** Agents' link: the TLS WebSocket server, one session per connection, live chunk files, the TLS identity. */
export * from './live-chunks.js';
export * from './server.js';
export * from './session.js';
export * from './tls-identity.js';
