/**
 * The environment the benchmarks start studiod with: what the shipped service unit sets for it
 * (the `Environment=` lines of scripts/systemd/studiod.service, such as glibc's malloc tunables,
 * which only take effect at process start), so a bench measures studiod as it runs in a studio;
 * then `--studiod-env "K=V K2=V2"` on top. `--studiod-env none` leaves the unit's out (studiod as
 * a bare `node` start).
 */
import { readFileSync } from 'node:fs';

const UNIT = new URL('../../systemd/studiod.service', import.meta.url);

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
export function serviceUnitEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(UNIT, 'utf8').split('\n'))
    if (line.startsWith('Environment='))
      Object.assign(env, assignments(line.slice('Environment='.length), UNIT.pathname));
  return env;
}

/** studiod's environment for a bench: the unit's, then the flag's (`none`: the flag's alone). */
export function studiodEnv(flag: string | undefined): Record<string, string> {
  const words = (flag ?? '').trim();
  if (words === 'none') return {};
  return { ...serviceUnitEnv(), ...assignments(words, '--studiod-env') };
}
