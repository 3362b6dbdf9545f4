/**
 * The environment the benchmarks start studiod and the field agent with: what the shipped service
 * unit sets for it (the `Environment=` lines of scripts/systemd/studiod.service and
 * field-agent.service, such as glibc's malloc tunables, which only take effect at process start),
 * so a bench measures each daemon as it runs in a studio or on a laptop; then `--studiod-env "K=V K2=V2"`
 * (or `--agent-env`) on top. `none` leaves the unit's out (a bare `node` start).
 */
import { readFileSync } from 'node:fs';

const UNITS = {
  studiod: new URL('../../systemd/studiod.service', import.meta.url),
  'field-agent': new URL('../../systemd/field-agent.service', import.meta.url),
} as const;

function assignments(words: string, where: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of words.split(' ').filter(Boolean)) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`${where}: ${kv} is not NAME=value`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return env;
}

/** The unit's `Environment=` variables. */
export function serviceUnitEnv(unit: keyof typeof UNITS): Record<string, string> {
  const env: Record<string, string> = {};
  const file = UNITS[unit];
  for (const line of readFileSync(file, 'utf8').split('\n'))
    if (line.startsWith('Environment='))
      Object.assign(env, assignments(line.slice('Environment='.length), file.pathname));
  return env;
}

/** A daemon's environment for a bench: its unit's, then the flag's (`none`: the flag's alone). */
function unitEnv(unit: keyof typeof UNITS, flag: string | undefined, flagName: string): Record<string, string> {
  const words = (flag ?? '').trim();
  if (words === 'none') return {};
  return { ...serviceUnitEnv(unit), ...assignments(words, flagName) };
}

/** studiod's environment for a bench: the unit's, then `--studiod-env` (`none`: not the unit's). */
export function studiodEnv(flag: string | undefined): Record<string, string> {
  return unitEnv('studiod', flag, '--studiod-env');
}

/**
 * The environment of a field agent standing for the service (`run`, and the ingest and sync the
 * service does): field-agent.service's, then `--agent-env` (`none`: not the unit's).
 */
export function agentEnv(flag: string | undefined): Record<string, string> {
  return unitEnv('field-agent', flag, '--agent-env');
}
