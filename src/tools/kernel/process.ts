import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { TwillError } from '../../errors.js';

export interface DaemonSpec {
  readonly cmd: string;
  readonly args: readonly string[];
  /** Run inside this named network namespace (`ip netns exec` execs, so the pid is the daemon's). */
  readonly netns?: string;
  /** stdout and stderr are appended here. */
  readonly logFile: string;
  readonly pidFile: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** Starts a detached daemon (own process group, survives our exit and Ctrl-C) and writes its pid file. */
export async function startDaemon(spec: DaemonSpec): Promise<number> {
  const [file, argv] = spec.netns ? ['ip', ['netns', 'exec', spec.netns, spec.cmd, ...spec.args]] : [spec.cmd, [...spec.args]];
  const fd = openSync(spec.logFile, 'a');
  try {
    const child = spawn(file, argv, { detached: true, stdio: ['ignore', fd, fd], env: spec.env ?? process.env });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid ?? 0));
      child.once('error', (e: NodeJS.ErrnoException) => {
        const code = e.code === 'ENOENT' ? 'TWILL_ERR_KERNEL_NOT_FOUND' : 'TWILL_ERR_KERNEL_COMMAND';
        reject(new TwillError(code, `cannot start ${file}: ${e.message}`, { cause: e, details: { cmd: file } }));
      });
    });
    child.unref();
    await writeFile(spec.pidFile, `${pid}\n`);
    return pid;
  } finally {
    closeSync(fd); // the child holds its own copy
  }
}

export async function readPidFile(path: string): Promise<number | null> {
  const text = await readFile(path, 'utf8').catch(() => null);
  const pid = Number(text?.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** True while the process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the parenthesised command name, which may itself contain spaces.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

export type StopOutcome = 'gone' | 'terminated' | 'killed';

/** SIGTERM, then SIGKILL once `timeoutMs` has passed; resolves when the process is gone. */
export async function stopProcess(pid: number, timeoutMs = 5_000): Promise<StopOutcome> {
  if (!signal(pid, 'SIGTERM')) return 'gone';
  if (await waitDead(pid, timeoutMs)) return 'terminated';
  signal(pid, 'SIGKILL');
  if (await waitDead(pid, 2_000)) return 'killed';
  throw new TwillError('TWILL_ERR_KERNEL_COMMAND', `process ${pid} survived SIGKILL`, { details: { pid } });
}

function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

async function waitDead(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(50);
  }
  return !isAlive(pid);
}

/** USER_HZ: /proc/PID/stat counts CPU time in these ticks; it is 100 on every Linux ABI Node runs on. */
export const CLOCK_TICKS_PER_SECOND = 100;

/** Pure: utime + stime (fields 14 and 15 of /proc/PID/stat), in ticks; null for text that is not a stat line. */
export function parseCpuTicks(stat: string): number | null {
  // Fields after the parenthesised command name (which may hold spaces): state is field 3.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).trim().split(/\s+/);
  const [utime, stime] = [Number(rest[14 - 3]), Number(rest[15 - 3])];
  return stat.includes(')') && Number.isInteger(utime) && Number.isInteger(stime) ? utime + stime : null;
}

/** Pure: cutime + cstime (fields 16 and 17): the CPU of its children it has waited for, in ticks; null for text that is not a stat line. */
export function parseChildCpuTicks(stat: string): number | null {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).trim().split(/\s+/);
  const [cutime, cstime] = [Number(rest[16 - 3]), Number(rest[17 - 3])];
  return stat.includes(')') && Number.isInteger(cutime) && Number.isInteger(cstime) ? cutime + cstime : null;
}

export interface ProcessCpu {
  /** utime + stime, in seconds. */
  readonly own: number;
  /** cutime + cstime: the programs it ran and has reaped (`ip`, `nft`, ...), in seconds. */
  readonly children: number;
}

/** A process's CPU so far, its own and its reaped children's; null once it is gone. */
export async function processCpu(pid: number): Promise<ProcessCpu | null> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  const own = text === null ? null : parseCpuTicks(text);
  const children = text === null ? null : parseChildCpuTicks(text);
  return own === null || children === null ? null : { own: own / CLOCK_TICKS_PER_SECOND, children: children / CLOCK_TICKS_PER_SECOND };
}

/** CPU seconds (user + system) a process has used so far; null once it is gone. */
export async function processCpuSeconds(pid: number): Promise<number | null> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  const ticks = text === null ? null : parseCpuTicks(text);
  return ticks === null ? null : ticks / CLOCK_TICKS_PER_SECOND;
}

export interface ProcessMemory {
  /** Resident set size now (VmRSS). */
  readonly rssBytes: number;
  /** The highest it has been (VmHWM). */
  readonly peakBytes: number;
}

/** Pure: VmRSS and VmHWM of /proc/PID/status (kB there); null when either is missing. */
export function parseMemory(status: string): ProcessMemory | null {
  const kb = (field: string): number | null => {
    const m = new RegExp(`^${field}:\\s*(\\d+)\\s*kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : null;
  };
  const [rss, peak] = [kb('VmRSS'), kb('VmHWM')];
  return rss === null || peak === null ? null : { rssBytes: rss, peakBytes: peak };
}

/** A process's memory now; null once it is gone. */
export async function processMemory(pid: number): Promise<ProcessMemory | null> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => null);
  return text === null ? null : parseMemory(text);
}
