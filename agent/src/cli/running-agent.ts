/**
 * Every command that needs the state DB (status, ingest, sync, resolve, verify,
 * eject, forget, report) runs on it directly when no agent runs, and while `field-agent run`
 * holds it asks the running agent through its status page API instead
 * (`directOrRunning`): the address and bearer token are in <data dir>/status-url
 * (0600). That file is looked at first, so a command the running agent answers never loads
 * LevelDB (`status` starts in well under 200 ms). Long commands stream their progress back as JSON lines (status-page.ts
 * `#call`). node:http, not fetch: a verify of a whole store may take longer than
 * fetch waits for headers; it is loaded only once there is an address to ask, so a command
 * with no agent running does not pay for it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CodedError, errorCode } from '@studio321/protocol/base';
import { AGENT_CODES, AgentError, type AgentCode } from '../errors.js';
import type { AgentState } from '../state/agent-state.js';
import type { StatusReads } from '../state/status-snapshot.js';
import { NDJSON, STATUS_URL_FILE } from '../paths.js';

/** A command's use of the status snapshot (state/status-snapshot.ts). */
export interface SnapshotUse<T> {
  /** With no agent running, before the state is opened: the answer from a valid snapshot, or undefined. */
  answer?: () => Promise<T | undefined>;
  /** Status as this command's config asks it, run as the state is closed: its reads are the next snapshot. */
  status: (reads: StatusReads) => Promise<unknown>;
}

/**
 * `direct(state)` when the state DB can be opened here; `running()` when `field-agent run` holds it.
 * `snapshot`: with no agent running, a valid status snapshot answers first; once `direct` ran,
 * the state is closed keeping a new one.
 */
export async function directOrRunning<T>(
  dataDir: string,
  direct: (state: AgentState) => Promise<T>,
  running: () => Promise<T>,
  snapshot?: SnapshotUse<T>,
): Promise<T> {
  let answered: unknown;
  try {
    return await running();
  } catch (err) {
    if (!noAgentThere(err)) answered = err;
  }
  if (answered === undefined && snapshot?.answer !== undefined) {
    const got = await snapshot.answer();
    if (got !== undefined) return got;
  }
  // No address, or nothing listens at it (an agent killed leaves the file): the state DB, which
  // says whether an agent holds it after all (one starting, before it writes its address).
  // Something else answered: its error stands only if an agent holds the state DB; if none does,
  // the address is stale (a killed agent's port since taken by another program) and nothing ran.
  const { AgentState } = await import('../state/agent-state.js');
  let state: AgentState;
  try {
    state = await AgentState.open(dataDir);
  } catch (err) {
    if (err instanceof CodedError && err.code === AGENT_CODES.stateLocked) {
      if (answered !== undefined) throw answered;
      return running();
    }
    throw err;
  }
  let result: T;
  try {
    result = await direct(state);
  } catch (err) {
    await state.close();
    throw err;
  }
  await state.close(
    snapshot === undefined
      ? {}
      : {
          whileQuiet: async (quiet) => {
            const { takeStatusSnapshot, writeStatusSnapshot } = await import('../state/status-snapshot.js');
            const taken = await takeStatusSnapshot(quiet, snapshot.status);
            return taken === undefined ? undefined : () => writeStatusSnapshot(taken);
          },
        },
  );
  return result;
}

/** The request reached no agent, so nothing ran: no address file, or no one listening at it. */
function noAgentThere(err: unknown): boolean {
  if (err instanceof CodedError && err.code === AGENT_CODES.stateLocked) return errorCode(err.cause) === 'ENOENT';
  return errorCode(err) === 'ECONNREFUSED';
}

function codedFrom(json: Record<string, unknown>, fallbackCode: AgentCode, fallbackMessage: string): CodedError {
  return new CodedError(
    typeof json['code'] === 'string' ? json['code'] : fallbackCode,
    typeof json['message'] === 'string' ? json['message'] : fallbackMessage,
    {
      ...(typeof json['retryable'] === 'boolean' ? { retryable: json['retryable'] } : {}),
      ...(typeof json['detail'] === 'object' && json['detail'] !== null
        ? { detail: json['detail'] as Record<string, unknown> }
        : {}),
    },
  );
}

/**
 * POSTs `apiPath?query` to the running agent; its JSON on 200, else its coded error (or
 * `fallbackCode`). With `onEvent`, the answer is streamed: each event line is handed to it as it
 * comes (progress, files), and the last line is the result or the coded error. `signal` ends the
 * request, which aborts the command in the agent.
 */
export async function callRunningAgent(
  dataDir: string,
  apiPath: string,
  query: Record<string, string>,
  fallbackCode: AgentCode,
  stream: { onEvent?: (event: Record<string, unknown>) => void; signal?: AbortSignal } = {},
): Promise<unknown> {
  const { onEvent, signal } = stream;
  let page: URL;
  try {
    page = new URL((await readFile(join(dataDir, STATUS_URL_FILE), 'utf8')).trim());
  } catch (err) {
    throw new AgentError(
      AGENT_CODES.stateLocked,
      `Another field-agent is using ${dataDir} and its status page is not there to ask (${errorCode(err) ?? 'unreadable address'}): stop it, then try again.`,
      { cause: err, retryable: true, detail: { dataDir } },
    );
  }
  const { request } = await import('node:http');
  const token = page.searchParams.get('token') ?? '';
  const url = new URL(apiPath, page.origin);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
  if (onEvent !== undefined) headers['Accept'] = NDJSON;
  let last: Record<string, unknown> | undefined;
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(url, { method: 'POST', headers, ...(signal === undefined ? {} : { signal }) }, (res) => {
      const streamed = onEvent !== undefined && (res.headers['content-type'] ?? '').startsWith(NDJSON);
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
        if (!streamed) return;
        let nl = text.indexOf('\n');
        while (nl >= 0) {
          let event: Record<string, unknown>;
          try {
            event = JSON.parse(text.slice(0, nl)) as Record<string, unknown>;
          } catch (err) {
            res.destroy();
            reject(
              new AgentError(fallbackCode, 'the running agent answered something that is not JSON', { cause: err }),
            );
            return;
          }
          text = text.slice(nl + 1);
          if (event['event'] === 'result' || event['event'] === 'error') last = event;
          else onEvent(event);
          nl = text.indexOf('\n');
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('error', (err) => reject(signal?.aborted === true ? signal.reason : err));
    req.end();
  });
  if (last !== undefined) {
    if (last['event'] === 'result') return last['result'];
    throw codedFrom((last['error'] ?? {}) as Record<string, unknown>, fallbackCode, 'the running agent failed');
  }
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(body) as Record<string, unknown>;
  } catch {
    // not JSON (404 "not available", 403…): reported below with the status
  }
  if (status === 200 && onEvent === undefined) return parsed;
  throw codedFrom(
    status === 200 ? {} : parsed,
    fallbackCode,
    status === 200
      ? 'the running agent stopped answering before the end: see its log'
      : `the running agent answered ${status}: ${body.trim().slice(0, 200)}`,
  );
}
