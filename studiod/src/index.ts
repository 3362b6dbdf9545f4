/**
 * studiod's public API. The root holds the daemon (Studio), its config, the catalogue, the
 * control socket and STUDIO_ errors; each concern has its own entry point:
 * `@studio321/studiod/link`, `/commit`, `/ledger`, `/cloud`, `/recovery`, `/ops`.
 */
export * from './errors.js';
export * from './config.js';
export * from './catalogue.js';
export * from './control-socket.js';
export * from './malloc-trim.js';
export * from './studio.js';
