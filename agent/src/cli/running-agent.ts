/**
 * Commands that need the state DB while `field-agent run` holds it (eject,
 * verify) ask the running agent through its status page API instead: the
 * address and bearer token are in <data dir>/status-url (0600). node:http, not
 * fetch: a verify of a whole store may take longer than fetch waits for headers.
 */
import { request } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CodedError, errorCode } from '@studio321/protocol';
import { AGENT_CODES, AgentError, type AgentCode } from '../errors.js';
import { STATUS_URL_FILE } from '../ui/agent-ui.js';

/** POSTs `apiPath?query` to the running agent; its JSON on 200, else its coded error (or `fallbackCode`). */
export async function callRunningAgent(
  dataDir: string,
  apiPath: string,
  query: Record<string, string>,
  fallbackCode: AgentCode,
): Promise<unknown> {
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
  const token = page.searchParams.get('token') ?? '';
  const url = new URL(apiPath, page.origin);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { Authorization: `Bearer ${token}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(body) as Record<string, unknown>;
  } catch {
    // not JSON (404 "not available", 403…): reported below with the status
  }
  if (status === 200) return parsed;
  throw new CodedError(
    typeof parsed['code'] === 'string' ? parsed['code'] : fallbackCode,
    typeof parsed['message'] === 'string'
      ? parsed['message']
      : `the running agent answered ${status}: ${body.trim().slice(0, 200)}`,
  );
}
