/** The studio link: the WebSocket client, one sync pass and the link it needs, the sync loop, the pairing identity, LINK_ errors. */
export * from './client.js';
export * from './errors.js';
export * from './identity.js';
export * from './sync-link.js';
export * from './sync-loop.js';
export * from './sync-pass.js';
export * from './verdicts.js';
export * from './mhl-send.js';
