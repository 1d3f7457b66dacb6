import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** One root logger per process; components take `child({ component })`. Secrets are redacted. */
export function createLogger(opts: { level?: string; stream?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { pid: process.pid },
      redact: { paths: ['*.etcdPassword', '*.password', 'etcdPassword', 'password'], censor: '[redacted]' },
    },
    opts.stream,
  );
}
