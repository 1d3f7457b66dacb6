import type { exec, ExecOptions } from './exec.js';

type ExecFn = typeof exec;

/** A change of a batch (a route, a neighbour, an FDB entry) that did not apply, and what the program said. */
export interface ChangeFailure<C> {
  readonly change: C;
  readonly reason: string;
}

/** One line of a batch that did not apply: its index in the lines given (from 0), and what the program said. */
export interface LineFailure {
  readonly index: number;
  readonly reason: string;
}

/**
 * Runs `lines` through `cmd -force -batch -` in one process (`ip` or `bridge`: both report a
 * failed line as "Command failed -:N" and go on). `ip neigh` exits at the first failure without
 * saying which line it was: every line from there is then reported as failed ("batch aborted"),
 * and the next pass, which reads the kernel again, retries what did not happen. Callers put
 * deletes last, so a stale entry that vanished meanwhile never holds up an entry a peer needs.
 */
export async function runBatchLines(run: ExecFn, cmd: string, args: readonly string[], lines: readonly string[], opts: ExecOptions = {}): Promise<LineFailure[]> {
  if (lines.length === 0) return [];
  const res = await run(cmd, [...args, '-force', '-batch', '-'], { ...opts, input: `${lines.join('\n')}\n`, allowFailure: true });
  return [...parseBatchStderr(res.stderr, lines.length, res.code)].map(([n, reason]) => ({ index: n - 1, reason }));
}

/**
 * Reads which lines of an `ip -force -batch -` run failed. ip prints its error text, then
 * "Command failed -:N" (N counts from 1). A malformed argument makes ip exit at once: error
 * text with no "Command failed" after it; every line from there on is then reported as failed.
 */
export function parseBatchStderr(stderr: string, lineCount: number, exitCode: number): Map<number, string> {
  const failed = new Map<number, string>();
  if (exitCode === 0) return failed;
  let pending: string[] = [];
  let last = 0;
  for (const text of stderr.split('\n').map((l) => l.trim())) {
    const m = /^Command failed \S*:(\d+)$/.exec(text);
    if (!m) {
      if (text !== '') pending.push(text);
      continue;
    }
    last = Number(m[1]);
    failed.set(last, pending.join('; ') || 'failed');
    pending = [];
  }
  if (pending.length > 0 || failed.size === 0) {
    const reason = `batch aborted: ${pending.join('; ') || `ip exited with ${exitCode}`}`;
    for (let n = last + 1; n <= lineCount; n++) failed.set(n, reason);
  }
  return failed;
}
