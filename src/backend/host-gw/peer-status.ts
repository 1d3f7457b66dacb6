import type { PeerState, PeerStatus } from '../../status/types.js';
import { HOST_GW_TYPE, type Peer } from './route-plan.js';

export interface StatusChange {
  readonly changed: boolean;
  readonly previous: PeerState | undefined;
}

/** Per-peer state for status(); `since` moves only when the state or its reason changes. */
export class PeerStatusTable {
  private readonly peers = new Map<string, PeerStatus>();

  constructor(private readonly now: () => Date) {}

  set(peer: Peer, state: PeerState, reason?: string): StatusChange {
    const prev = this.peers.get(peer.subnet);
    const same = prev?.state === state && prev.reason === reason && prev.publicIP === peer.publicIP;
    if (same) return { changed: false, previous: prev.state };
    this.peers.set(peer.subnet, {
      subnet: peer.subnet,
      publicIP: peer.publicIP,
      backendType: HOST_GW_TYPE,
      state,
      ...(reason === undefined ? {} : { reason }),
      since: this.now().toISOString(),
    });
    return { changed: true, previous: prev?.state };
  }

  get(subnet: string): PeerStatus | undefined {
    return this.peers.get(subnet);
  }

  delete(subnet: string): void {
    this.peers.delete(subnet);
  }

  /** Forgets peers that are no longer in the lease set. */
  retain(subnets: ReadonlySet<string>): void {
    for (const subnet of this.peers.keys()) if (!subnets.has(subnet)) this.peers.delete(subnet);
  }

  list(): PeerStatus[] {
    return [...this.peers.values()].sort((a, b) => a.subnet.localeCompare(b.subnet));
  }

  count(state: PeerState): number {
    let n = 0;
    for (const p of this.peers.values()) if (p.state === state) n++;
    return n;
  }
}
