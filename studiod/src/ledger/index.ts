/** The ledger: 3-2-1 verdicts, the control-socket service, the status report, verify, studioctl formats, LEDGER_ errors. */
export * from './errors.js';
export * from './format.js';
export * from './ledger.js';
export * from './service.js';
export * from './status-report.js';
export * from './studioctl-format.js';
export * from './verify-copies.js';
