import { exec } from '../../kernel/exec.js';

export interface NodeScriptRun {
  readonly ns: string;
  /** JavaScript source, run with `node -e`; it gets `args` as process.argv.slice(1). */
  readonly script: string;
  readonly args: readonly string[];
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/**
 * Runs a short Node.js script inside a network namespace (lab addresses are reachable only
 * there) and returns what it printed. A non-zero exit is TWILL_ERR_KERNEL_COMMAND with its stderr.
 */
export async function nodeScriptInNetns(run: NodeScriptRun): Promise<string> {
  const res = await exec(process.execPath, ['-e', run.script, '--', ...run.args], { netns: run.ns, timeoutMs: run.timeoutMs, signal: run.signal });
  return res.stdout;
}
