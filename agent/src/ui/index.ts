/** What the photographer sees: the live snapshot, the status page, the tray and notifications. */
export * from './agent-ui.js';
export * from './desktop-notify.js';
export * from './snapshot.js';
export * from './status-page-assets.js';
export * from './status-page.js';
export * from './status-provider.js';
export * from './tray-icons.js';
export * from './tray-summary.js';
export * from './tray.js';
