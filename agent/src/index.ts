/** The field agent's public API (for the link client, the tray/status page and tests). */
export { AgentState, type PendingAsset, type StudioReceipt, type CardInput } from './state/agent-state.js';
export { AgentRunner, type AgentRunnerOptions, type SyncContext, type SyncHandle } from './runner.js';
export { buildStatus, summariseCard, formatStatus, type AgentStatus, type CardSummary } from './state/status.js';
export { evaluateSafeToFormat, type SafeToFormat } from './state/safe-to-format.js';
export { AGENT_CODES, AgentError, type AgentCode } from './errors.js';
export { resolvePaths, type AgentPaths } from './paths.js';
export { loadAgentConfig, type AgentConfig } from './config.js';
