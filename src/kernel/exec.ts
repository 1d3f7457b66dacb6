import { spawn } from 'node:child_process';
import { TwillError } from '../errors.js';

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface ExecOptions {
  /** Text written to the child's stdin (used for `ip -batch -` and `nft -f -`). */
  input?: string;
  /** Run inside this network namespace (`ip netns exec NS ...`). */
  netns?: string;
  env?: NodeJS.ProcessEnv;
  /** Resolve with a non-zero exit code instead of throwing. */
  allowFailure?: boolean;
  timeoutMs?: number;
  /** Aborting kills the child (SIGTERM) and rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** The one choke point through which twill runs programs. */
export function exec(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const [file, argv] = opts.netns ? ['ip', ['netns', 'exec', opts.netns, cmd, ...args]] : [cmd, [...args]];
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(opts.signal.reason);
    const child = spawn(file, argv, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 30_000, signal: opts.signal });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (opts.signal?.aborted) return reject(opts.signal.reason);
      const code = e.code === 'ENOENT' ? 'TWILL_ERR_KERNEL_NOT_FOUND' : 'TWILL_ERR_KERNEL_COMMAND';
      reject(new TwillError(code, `cannot run ${file}: ${e.message}`, { cause: e, details: { cmd: file } }));
    });
    child.on('close', (code, signal) => {
      if (opts.signal?.aborted) return reject(opts.signal.reason);
      const result = { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code: code ?? 128 };
      if (result.code === 0 || opts.allowFailure) return resolve(result);
      const what = [file, ...argv].join(' ');
      const why = signal ? `killed by ${signal}` : `exit ${result.code}: ${result.stderr.trim()}`;
      reject(new TwillError('TWILL_ERR_KERNEL_COMMAND', `${what} failed (${why})`, { details: { ...result, cmd: what } }));
    });
    child.stdin.on('error', () => undefined); // a child that exits early must not crash us with EPIPE
    child.stdin.end(opts.input ?? '');
  });
}
