import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** One root logger per process; components take `child({ component })`. Secrets are redacted. */
export function createLogger(opts: { level?: string; stream?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { pid: process.pid },
      // Secrets never reach a log line, whichever object they ride in (options, flags, etcd access).
      redact: { paths: ['etcdPassword', 'password', '*.etcdPassword', '*.password', '*.*.password'], censor: '[redacted]' },
    },
    opts.stream,
  );
}
