import type { FastifyInstance } from 'fastify';
import { listenOrExplain } from '../../../api/listen.js';
import { createLogger } from '../../../log.js';
import { readAgentApis, type AgentApiView } from '../agent-api.js';
import { parseIntOption } from '../naming.js';
import { assertRoot, requirePrograms } from '../preflight.js';
import { requireState } from '../state.js';
import { runLabTrace } from '../trace/run.js';
import { buildLabUi, type LabUiDeps } from './server.js';
import { labView } from './view.js';

export const DEFAULT_UI_PORT = 8480;
/** The page polls every 2 s; pages open at once share one round of status requests this fresh. */
const AGENTS_MAX_AGE_MS = 1000;

/** `--port`: 0 lets the kernel pick a free one (printed). */
export function parseUiPort(text: string, flag = '--port'): number {
  return parseIntOption(text, flag, 0, 65535);
}

/** The real lab behind the page: its state file read for each request, so a restarted agent shows. */
export function labUiDeps(lab: { readonly name: string; readonly dir: string }): Omit<LabUiDeps, 'logger'> {
  const state = () => requireState(lab.dir, lab.name);
  return {
    lab: async () => labView(await state()),
    agents: shareRecent(async () => readAgentApis(await state()), AGENTS_MAX_AGE_MS),
    trace: async (from, to) => {
      await requirePrograms(['ping', 'tcpdump']);
      return runLabTrace(await state(), from, to);
    },
  };
}

/** Calls within maxAgeMs of the last one that started get its answer; a failure is not kept. */
function shareRecent(fn: () => Promise<AgentApiView[]>, maxAgeMs: number): () => Promise<AgentApiView[]> {
  let last: { readonly at: number; readonly answer: Promise<AgentApiView[]> } | null = null;
  return () => {
    if (last && Date.now() - last.at < maxAgeMs) return last.answer;
    const answer = fn();
    const mine = { at: Date.now(), answer };
    last = mine;
    answer.catch(() => {
      if (last === mine) last = null;
    });
    return answer;
  };
}

/** Listens on 127.0.0.1 only (the root namespace's loopback) and returns the page's URL. */
export async function listenLabUi(app: FastifyInstance, port: number): Promise<string> {
  await listenOrExplain(app, { host: '127.0.0.1', port, what: 'lab page', inUseHint: '; choose another with --port' }, `127.0.0.1:${port}`);
  const bound = app.server.address();
  return `http://127.0.0.1:${typeof bound === 'object' && bound ? bound.port : port}/`;
}

/**
 * `twill lab ui` (and `lab up --ui` once the lab is up): serves the page until SIGINT or
 * SIGTERM, then closes the server; the lab stays up.
 */
export async function serveLabUi(lab: { readonly name: string; readonly dir: string }, port: number, say: (line: string) => void): Promise<void> {
  assertRoot('twill lab ui');
  await requireState(lab.dir, lab.name);
  const app = buildLabUi({ ...labUiDeps(lab), logger: createLogger({ level: 'warn', stream: process.stderr }) });
  const url = await listenLabUi(app, port);
  say(`lab ${lab.name}: the lab page is at ${url} (on this machine only; Ctrl-C stops it, the lab stays up)\n`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const stop = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(sig);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  say(`lab page stopped (${signal})\n`);
  await app.close();
}
