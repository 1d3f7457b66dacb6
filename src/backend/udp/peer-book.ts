import { formatCidr } from '../../lib/ipv4.js';
import type { Lease } from '../../subnet/types.js';
import type { PeerState, PeerStatus, TrafficStatus } from '../../status/types.js';

export interface BookEntry {
  readonly lease: Lease;
  readonly state: PeerState;
  readonly reason?: string;
  readonly since: string;
}

const NO_TRAFFIC: TrafficStatus = Object.freeze({ packetsIn: 0, bytesIn: 0, packetsOut: 0, bytesOut: 0 });

/** The udp peers as status() reports them, by subnet; `since` moves only when something changes. */
export class PeerBook {
  private readonly entries = new Map<string, BookEntry>();

  constructor(private readonly now: () => Date) {}

  get(subnet: string): BookEntry | undefined {
    return this.entries.get(subnet);
  }

  /** Records a peer's state; returns false when nothing changed. */
  set(lease: Lease, state: PeerState, reason?: string): boolean {
    const subnet = formatCidr(lease.subnet);
    const prev = this.entries.get(subnet);
    if (prev?.state === state && prev.reason === reason && prev.lease.attrs.publicIP === lease.attrs.publicIP) return false;
    this.entries.set(subnet, { lease, state, ...(reason === undefined ? {} : { reason }), since: this.now().toISOString() });
    return true;
  }

  delete(subnet: string): BookEntry | undefined {
    const prev = this.entries.get(subnet);
    this.entries.delete(subnet);
    return prev;
  }

  /** Every peer carried (programmed or pending), for DirectRouting. */
  peers(): { subnet: string; publicIP: string }[] {
    return [...this.entries].filter(([, e]) => e.state !== 'error').map(([subnet, e]) => ({ subnet, publicIP: e.lease.attrs.publicIP }));
  }

  /** Leases recorded before the data path existed, to hand over when it starts. */
  pending(): Lease[] {
    return [...this.entries.values()].filter((e) => e.state === 'pending').map((e) => e.lease);
  }

  /** `via` (DirectRouting only) says how each carried peer is reached: `direct` or `udp`. */
  list(traffic: ReadonlyMap<string, TrafficStatus>, via?: (subnet: string) => string): PeerStatus[] {
    return [...this.entries]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([subnet, e]) => ({
        subnet,
        publicIP: e.lease.attrs.publicIP,
        backendType: e.lease.attrs.backendType ?? null,
        state: e.state,
        ...(e.reason === undefined ? {} : { reason: e.reason }),
        since: e.since,
        traffic: traffic.get(subnet) ?? NO_TRAFFIC,
        ...(via && e.state === 'programmed' ? { via: via(subnet) } : {}),
      }));
  }
}
