import { exec } from '../../kernel/exec.js';
import type { LabState } from './state.js';
import type { PingResult } from './render.js';
import { mapLimit } from './wait.js';

const PING_CONCURRENCY = 8;

/** Pings every pod from every other pod (one echo, 2 s), inside the source pod's namespace. */
export async function pingMatrix(state: LabState): Promise<PingResult[]> {
  const pairs = state.pods.flatMap((from) => state.pods.filter((to) => to.id !== from.id).map((to) => ({ from, to })));
  return mapLimit(pairs, PING_CONCURRENCY, async ({ from, to }): Promise<PingResult> => {
    if (to.ip === null || from.ip === null) return { from: from.id, to: to.id, ok: false, detail: 'no pod IP recorded' };
    const res = await exec('ping', ['-c', '1', '-W', '2', to.ip], { netns: from.ns, allowFailure: true, timeoutMs: 10_000 });
    return { from: from.id, to: to.id, ok: res.code === 0, detail: res.code === 0 ? '' : lastLine(res.stdout, res.stderr) };
  });
}

function lastLine(...texts: string[]): string {
  const lines = texts.join('\n').split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return lines.at(-1) ?? 'no reply';
}
