/**
 * Where the agent keeps its things when nothing says otherwise (XDG on Linux).
 *
 *   data dir   : --data-dir, else $FIELD_AGENT_HOME, else $XDG_DATA_HOME/studio321/field-agent
 *                (XDG_DATA_HOME defaults to ~/.local/share)
 *   config file: --config, else $FIELD_AGENT_HOME/field-agent.json, else
 *                $XDG_CONFIG_HOME/studio321/field-agent.json (XDG_CONFIG_HOME defaults to ~/.config)
 *   store      : config `store`, else <data dir>/store
 *   state DB   : <data dir>/state (LevelDB)
 *   status URL : <data dir>/status-url (the running agent's status page, for the CLI)
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/** The file in the data dir where a running agent writes its status page's URL (ui/agent-ui.ts). */
export const STATUS_URL_FILE = 'status-url';

/** The content type of the status page API's streamed answers (JSON lines), asked for by the CLI. */
export const NDJSON = 'application/x-ndjson';

export interface PathOverrides {
  dataDir?: string | undefined;
  config?: string | undefined;
}

export interface AgentPaths {
  dataDir: string;
  configFile: string;
  /** True when the config file was named explicitly (then it must exist). */
  configExplicit: boolean;
  stateDir: string;
  defaultStore: string;
}

function xdg(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const v = env[name];
  // The XDG spec says relative values are invalid and must be ignored.
  return v !== undefined && v !== '' && isAbsolute(v) ? v : join(homedir(), fallback);
}

export function resolvePaths(overrides: PathOverrides = {}, env: NodeJS.ProcessEnv = process.env): AgentPaths {
  const home = env['FIELD_AGENT_HOME'];
  const dataDir =
    overrides.dataDir !== undefined
      ? resolve(overrides.dataDir)
      : home !== undefined && home !== ''
        ? resolve(home)
        : join(xdg(env, 'XDG_DATA_HOME', '.local/share'), 'studio321', 'field-agent');
  const configFile =
    overrides.config !== undefined
      ? resolve(overrides.config)
      : home !== undefined && home !== ''
        ? join(resolve(home), 'field-agent.json')
        : join(xdg(env, 'XDG_CONFIG_HOME', '.config'), 'studio321', 'field-agent.json');
  return {
    dataDir,
    configFile,
    configExplicit: overrides.config !== undefined,
    stateDir: join(dataDir, 'state'),
    defaultStore: join(dataDir, 'store'),
  };
}
