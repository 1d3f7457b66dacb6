import { existsSync } from 'node:fs';
import { exec } from '../../kernel/exec.js';
import { TwillError } from '../../errors.js';

export interface NodeScriptRun {
  readonly ns: string;
  /**
   * A compiled program of the tools (dist/tools/scripts/*.main.js, type-checked and linted
   * with the rest); it gets `args` as process.argv.slice(2).
   */
  readonly file: string;
  readonly args: readonly string[];
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/**
 * Runs a short Node.js program inside a network namespace (lab addresses are reachable only
 * there) and returns what it printed. A non-zero exit is TWILL_ERR_KERNEL_COMMAND with its
 * stderr; a program not built yet is TWILL_ERR_LAB_STATE.
 */
export async function nodeScriptInNetns(run: NodeScriptRun): Promise<string> {
  if (!existsSync(run.file)) throw new TwillError('TWILL_ERR_LAB_STATE', `the helper program ${run.file} is missing: run "npm run build"`);
  const res = await exec(process.execPath, [run.file, ...run.args], { netns: run.ns, timeoutMs: run.timeoutMs, signal: run.signal });
  return res.stdout;
}
