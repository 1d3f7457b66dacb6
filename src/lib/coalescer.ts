/**
 * Runs a task one at a time. A request that arrives while the task runs is served by exactly
 * one follow-up run, shared by every request made in the meantime (they coalesce).
 * The task must not reject; a rejection is swallowed here so the chain never breaks.
 */
export class Coalescer {
  private current: Promise<void> | null = null;
  private queued: Promise<void> | null = null;

  constructor(private readonly task: () => Promise<void>) {}

  run(): Promise<void> {
    if (this.queued) return this.queued;
    if (!this.current) return this.start();
    const next = (): Promise<void> => {
      this.queued = null;
      return this.start();
    };
    this.queued = this.current.then(next, next);
    return this.queued;
  }

  /** Resolves once nothing is running or queued. */
  async idle(): Promise<void> {
    while (this.queued ?? this.current) await (this.queued ?? this.current)?.catch(() => undefined);
  }

  private start(): Promise<void> {
    const run: Promise<void> = this.task()
      .catch(() => undefined)
      .finally(() => {
        if (this.current === run) this.current = null;
      });
    this.current = run;
    return run;
  }
}
