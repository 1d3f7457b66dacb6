import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `twill` CLI (npm run build first), optionally inside a namespace. */
export function twill(args: readonly string[], opts: { input?: string; netns?: string } = {}): Promise<CliResult> {
  const argv = opts.netns ? ['netns', 'exec', opts.netns, process.execPath, CLI, ...args] : [CLI, ...args];
  const child = spawn(opts.netns ? 'ip' : process.execPath, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdin.end(opts.input ?? '');
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? 128, stdout, stderr })));
}
