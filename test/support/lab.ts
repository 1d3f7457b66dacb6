/**
 * Drives `twill lab` the way an operator does: the built CLI (dist/cli/main.js) as a child
 * process. Lab names used by tests never collide with other tests' `twl-t-*` namespaces.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI } from './cli.js';

export { CLI };

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

export const isRoot = (): boolean => process.getuid?.() === 0;

/** The e2e test script builds first; fail loudly rather than test a stale or missing build. */
export function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" before the e2e tests`);
}

/** Runs a program; never throws on a non-zero exit (the test asserts on `code`). */
export function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 120_000): Promise<RunResult> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(cmd, [...args], { env, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

export function twill(args: readonly string[]): Promise<RunResult> {
  return run(process.execPath, [CLI, ...args]);
}

export function inNetns(ns: string, cmd: string, args: readonly string[]): Promise<RunResult> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], { ...process.env, ETCDCTL_API: '3' });
}

/** `etcdctl get --prefix` output (key and value on alternating lines) as a map. */
export function parseEtcdctlGet(text: string): Map<string, string> {
  const lines = text.split('\n').filter((l) => l !== '');
  const out = new Map<string, string>();
  for (let i = 0; i + 1 < lines.length; i += 2) out.set(lines[i]!, lines[i + 1]!);
  return out;
}

export async function labNamespaces(name: string): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter((ns) => ns.startsWith(`twl-${name}-`));
}

export interface LabStateFile {
  readonly hosts: readonly { id: string; ns: string; ip: string; pid: number | null; subnet: string | null }[];
  readonly pods: readonly { id: string; host: string; ns: string; ip: string | null }[];
}

export async function readLabState(dir: string): Promise<LabStateFile> {
  return JSON.parse(await readFile(`${dir}/state.json`, 'utf8')) as LabStateFile;
}

/** Polls until `probe` is true; returns the time it took, or null after the timeout. */
export async function pollMs(probe: () => Promise<boolean>, timeoutMs: number, intervalMs = 100): Promise<number | null> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (await probe()) return Date.now() - t0;
    await sleep(Math.min(intervalMs, Math.max(0, timeoutMs - (Date.now() - t0))));
  }
  return (await probe()) ? Date.now() - t0 : null; // one last look at the deadline
}
