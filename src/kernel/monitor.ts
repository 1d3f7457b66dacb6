import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { TwillError } from '../errors.js';
import type { Feed, FeedHandlers } from '../lib/kept-feed.js';

export type { Feed, FeedHandlers, FeedStarter } from '../lib/kept-feed.js';

/** Starts a program that prints one event per line until stopped. Injected so tests can fake it. */
export type MonitorFn = (cmd: string, args: readonly string[], netns: string | undefined, handlers: FeedHandlers<string>) => Feed;

/** Monitors still running; killed when the process exits, however it exits (they would outlive it). */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGTERM');
});

/** The real MonitorFn: a child process whose stdout lines are events and whose stderr lines are losses. */
export const spawnMonitor: MonitorFn = (cmd, args, netns, handlers) => {
  const [file, argv] = netns === undefined ? [cmd, [...args]] : ['ip', ['netns', 'exec', netns, cmd, ...args]];
  const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let ended = false;
  const end = (err: Error | null) => {
    live.delete(child);
    if (ended) return;
    ended = true;
    handlers.end(err);
  };
  createInterface({ input: child.stdout }).on('line', (line) => !ended && handlers.event(line));
  createInterface({ input: child.stderr }).on('line', (line) => !ended && line.trim() !== '' && handlers.lost(line.trim()));
  child.on('error', (e: NodeJS.ErrnoException) => {
    const code = e.code === 'ENOENT' ? 'TWILL_ERR_KERNEL_NOT_FOUND' : 'TWILL_ERR_KERNEL_COMMAND';
    end(new TwillError(code, `cannot run ${file}: ${e.message}`, { cause: e, details: { cmd: file } }));
  });
  child.on('exit', (code, signal) => end(new TwillError('TWILL_ERR_KERNEL_COMMAND', `${[file, ...argv].join(' ')} exited (${signal ?? `exit ${code}`})`, { details: { cmd: file } })));
  return {
    stop() {
      ended = true;
      live.delete(child);
      child.kill('SIGTERM');
    },
  };
};
