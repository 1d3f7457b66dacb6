/**
 * Longest-prefix match over IPv4 subnets. Pure. One Map per prefix length, keyed by the
 * network address as a signed int32 (a Smi on 64-bit Node, so a lookup allocates nothing),
 * probed from the longest length down; leases share one length, so a lookup is usually one probe.
 */
import { mask, type Ipv4Net } from '../../lib/ipv4.js';

const MASKS_I32: readonly number[] = Array.from({ length: 33 }, (_, len) => mask(len) | 0);

export class PeerTable<T> {
  /** Index = prefix length. */
  private readonly byLen: (Map<number, T> | undefined)[] = new Array<Map<number, T> | undefined>(33).fill(undefined);
  /** Lengths in use, longest first. */
  private lens: number[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds or replaces the entry for `net` (host bits are ignored). */
  set(net: Ipv4Net, value: T): void {
    let map = this.byLen[net.len];
    if (!map) {
      map = new Map();
      this.byLen[net.len] = map;
      this.lens = [...this.lens, net.len].sort((a, b) => b - a);
    }
    const key = net.addr & MASKS_I32[net.len]!;
    if (!map.has(key)) this.count++;
    map.set(key, value);
  }

  delete(net: Ipv4Net): boolean {
    const map = this.byLen[net.len];
    if (!map?.delete(net.addr & MASKS_I32[net.len]!)) return false;
    this.count--;
    if (map.size === 0) {
      this.byLen[net.len] = undefined;
      this.lens = this.lens.filter((l) => l !== net.len);
    }
    return true;
  }

  /** The entry for exactly `net`. */
  get(net: Ipv4Net): T | undefined {
    return this.byLen[net.len]?.get(net.addr & MASKS_I32[net.len]!);
  }

  /** The entry with the longest prefix containing `ip` (uint32 or int32 form). */
  lookup(ip: number): T | undefined {
    const lens = this.lens;
    for (let i = 0; i < lens.length; i++) {
      const len = lens[i]!;
      const hit = this.byLen[len]!.get(ip & MASKS_I32[len]!);
      if (hit !== undefined) return hit;
    }
    return undefined;
  }

  *entries(): IterableIterator<[Ipv4Net, T]> {
    for (const len of this.lens) {
      for (const [key, value] of this.byLen[len]!) yield [{ addr: key >>> 0, len }, value];
    }
  }
}
