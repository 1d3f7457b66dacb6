import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { TwillError } from '../../errors.js';

export interface NodeSessionSpec {
  readonly ns: string;
  /** A compiled program of the tools (dist/tools/scripts/*.main.js) that answers each stdin line with one stdout line. */
  readonly file: string;
  readonly args: readonly string[];
  /** Aborting kills the program; pending and later requests reject with the abort's reason. */
  readonly signal?: AbortSignal;
}

/** A long-lived helper program inside a network namespace, spoken to in JSON lines, one request at a time. */
export interface NodeSession {
  /** Sends one request and resolves with its answer; rejects if the program dies or `timeoutMs` passes (then it is killed). */
  request<T>(message: object, timeoutMs: number): Promise<T>;
  /** Closes its stdin and waits for it to exit (killing it after a few seconds). */
  close(): Promise<void>;
}

const STDERR_TAIL = 2000;
const CLOSE_GRACE_MS = 3000;

/**
 * Starts `ip netns exec NS node FILE ARGS...` with pipes. Unlike exec(), it stays up between
 * requests, so a request costs no process start (the scale bench's driver polls and times).
 */
export function startNodeSession(spec: NodeSessionSpec): NodeSession {
  if (!existsSync(spec.file)) throw new TwillError('TWILL_ERR_LAB_STATE', `the helper program ${spec.file} is missing: run "npm run build"`);
  spec.signal?.throwIfAborted();
  const child = spawn('ip', ['netns', 'exec', spec.ns, process.execPath, spec.file, ...spec.args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-STDERR_TAIL)));
  child.stdin.on('error', () => undefined); // a program that died must not crash us with EPIPE
  const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  let failure: Error | null = null;
  const exited = new Promise<void>((resolve) => {
    const fail = (why: string) => {
      failure ??= spec.signal?.aborted ? toError(spec.signal.reason) : new TwillError('TWILL_ERR_KERNEL_COMMAND', `${spec.file} in ${spec.ns} ${why}: ${stderr.trim() || 'no output'}`);
      resolve();
    };
    child.once('error', (e) => fail(`could not start (${e.message})`));
    child.once('close', (code, sig) => fail(sig ? `was killed by ${sig}` : `exited with ${code}`));
  });
  const onAbort = (): void => void child.kill('SIGTERM');
  spec.signal?.addEventListener('abort', onAbort, { once: true });
  void exited.then(() => spec.signal?.removeEventListener('abort', onAbort));
  let queue: Promise<unknown> = Promise.resolve();

  const once = <T>(message: object, timeoutMs: number): Promise<T> => {
    if (failure) return Promise.reject(failure);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new TwillError('TWILL_ERR_KERNEL_COMMAND', `${spec.file} in ${spec.ns} did not answer within ${timeoutMs / 1000} s`));
        child.kill('SIGTERM');
      }, timeoutMs);
      waiting.push((line) => {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(line) as T);
        } catch {
          reject(new TwillError('TWILL_ERR_KERNEL_COMMAND', `${spec.file} answered with a line that is not JSON: ${line.slice(0, 200)}`));
        }
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(failure!);
      });
      child.stdin.write(`${JSON.stringify(message)}\n`);
    });
  };

  return {
    request<T>(message: object, timeoutMs: number): Promise<T> {
      const next = queue.then(() => once<T>(message, timeoutMs));
      queue = next.catch(() => undefined);
      return next;
    },
    async close(): Promise<void> {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), CLOSE_GRACE_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

const toError = (reason: unknown): Error => (reason instanceof Error ? reason : new Error(String(reason)));
