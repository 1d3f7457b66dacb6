/** Where an outage log writes (a pino logger fits; `lib` imports no logger of its own). */
export interface OutageLogger {
  warn(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
}

/** Why the last attempt failed: an error's code and message. */
export interface OutageCause {
  readonly code: string;
  readonly message: string;
}

export interface OutageLogOptions {
  readonly logger: OutageLogger;
  /** What is out, as the lines name it ("etcd"). */
  readonly subject: string;
  /** Milliseconds, monotonic enough for durations (default Date.now). */
  readonly now?: () => number;
  /** At most one reminder this often while the outage lasts (default one minute). */
  readonly reminderMs?: number;
}

/**
 * Turns a stream of failed and successful attempts into a few lines: one warning when an outage
 * starts (`<subject> unreachable`, with the first failure's code), at most one reminder per
 * `reminderMs` while it lasts (`<subject> still unreachable`, with the latest code), and one line
 * when it ends (`<subject> reachable again`, with its duration). Attempts in between say nothing.
 * Reminders come with failures: whoever feeds it must keep trying (the agent's etcd probe does).
 */
export class OutageLog {
  private since: number | null = null;
  private lastLine = 0;
  private failures = 0;
  private readonly now: () => number;
  private readonly reminderMs: number;

  constructor(private readonly opts: OutageLogOptions) {
    this.now = opts.now ?? Date.now;
    this.reminderMs = opts.reminderMs ?? 60_000;
  }

  /** True from the first failure until the next success. */
  get down(): boolean {
    return this.since !== null;
  }

  failed(cause: OutageCause): void {
    const now = this.now();
    this.failures++;
    if (this.since === null) {
      this.since = this.lastLine = now;
      this.failures = 1;
      this.opts.logger.warn({ code: cause.code, why: cause.message }, `${this.opts.subject} unreachable; retrying`);
      return;
    }
    if (now - this.lastLine < this.reminderMs) return;
    this.lastLine = now;
    this.opts.logger.warn({ code: cause.code, why: cause.message, downSeconds: seconds(now - this.since), failures: this.failures }, `${this.opts.subject} still unreachable`);
  }

  succeeded(): void {
    if (this.since === null) return;
    const downMs = this.now() - this.since;
    this.opts.logger.info({ downSeconds: seconds(downMs), failures: this.failures }, `${this.opts.subject} reachable again`);
    this.since = null;
    this.failures = 0;
  }
}

/** Seconds with one decimal: enough for an outage's length, and readable. */
function seconds(ms: number): number {
  return Math.round(ms / 100) / 10;
}
