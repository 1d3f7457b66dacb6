/** Time as the registry sees it, in ms. A clock that jumps tells the registry, which then expires leases. */
export interface RegistryClock {
  now(): number;
  onAdvance?(listener: () => void): void;
}

/** A clock that only moves when told: tests let an hour pass without sleeping. */
export class ManualClock implements RegistryClock {
  private ms = 1_000_000;
  private readonly listeners: (() => void)[] = [];

  now(): number {
    return this.ms;
  }

  onAdvance(listener: () => void): void {
    this.listeners.push(listener);
  }

  advance(seconds: number): void {
    this.ms += seconds * 1000;
    for (const l of this.listeners) l();
  }
}
