import type { PeerState, PeerStatus } from '../../status/types.js';
import type { Via } from './plan.js';

/** A peer as the status shows it. */
export interface PeerRef {
  readonly subnet: string;
  readonly publicIP: string;
  readonly backendType: string | null;
}

/** Per-peer state for status(); `since` moves only when the state, its reason or the path changes. */
export class VxlanPeerTable {
  private readonly peers = new Map<string, PeerStatus>();

  constructor(private readonly now: () => Date) {}

  /** True when something changed (the caller logs only then). */
  set(peer: PeerRef, state: PeerState, extra: { reason?: string; via?: Via } = {}): boolean {
    const prev = this.peers.get(peer.subnet);
    if (prev && prev.state === state && prev.reason === extra.reason && prev.via === extra.via && prev.publicIP === peer.publicIP && prev.backendType === peer.backendType) return false;
    this.peers.set(peer.subnet, {
      subnet: peer.subnet,
      publicIP: peer.publicIP,
      backendType: peer.backendType,
      state,
      ...(extra.reason === undefined ? {} : { reason: extra.reason }),
      ...(extra.via === undefined ? {} : { via: extra.via }),
      since: this.now().toISOString(),
    });
    return true;
  }

  get(subnet: string): PeerStatus | undefined {
    return this.peers.get(subnet);
  }

  delete(subnet: string): void {
    this.peers.delete(subnet);
  }

  list(): PeerStatus[] {
    return [...this.peers.values()].sort((a, b) => a.subnet.localeCompare(b.subnet));
  }

  count(pred: (p: PeerStatus) => boolean): number {
    let n = 0;
    for (const p of this.peers.values()) if (pred(p)) n++;
    return n;
  }
}
