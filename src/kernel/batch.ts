import type { ExecOptions } from './exec.js';
import { parseBatchStderr, type ExecFn } from './routes.js';

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
