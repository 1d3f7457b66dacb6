export type AgentState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

const NEXT: Record<AgentState, readonly AgentState[]> = {
  created: ['starting', 'stopped'],
  starting: ['running', 'stopping'],
  running: ['stopping'],
  stopping: ['stopped'],
  stopped: [],
};

/** The one place agent state changes; an illegal transition is a bug, so it throws. */
export class Lifecycle {
  private current: AgentState = 'created';
  private since = new Date();

  get state(): AgentState {
    return this.current;
  }

  get changedAt(): Date {
    return this.since;
  }

  to(next: AgentState): void {
    if (!NEXT[this.current].includes(next)) throw new Error(`agent lifecycle: ${this.current} → ${next} is not allowed`);
    this.current = next;
    this.since = new Date();
  }

  /** Long start-up loops poll this to give up when a stop is requested. */
  get stopRequested(): boolean {
    return this.current === 'stopping' || this.current === 'stopped';
  }
}
