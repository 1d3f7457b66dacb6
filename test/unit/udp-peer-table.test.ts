import { describe, expect, it } from 'vitest';
import { PeerTable } from '../../src/backend/udp/peer-table.js';
import { contains, formatCidr, mask, parseCidr, parseIp, type Ipv4Net } from '../../src/lib/ipv4.js';
import { rng } from '../support/rng.js';


/** The obvious implementation: scan every entry, keep the longest that contains the address. */
class NaiveTable<T> {
  readonly entries = new Map<string, { net: Ipv4Net; value: T }>();
  set(net: Ipv4Net, value: T): void {
    this.entries.set(formatCidr(net), { net, value });
  }
  delete(net: Ipv4Net): boolean {
    return this.entries.delete(formatCidr(net));
  }
  lookup(ip: number): T | undefined {
    let best: { net: Ipv4Net; value: T } | undefined;
    for (const e of this.entries.values()) if (contains(e.net, ip) && (!best || e.net.len > best.net.len)) best = e;
    return best?.value;
  }
}

const net = (s: string) => parseCidr(s)!;

describe('PeerTable (longest-prefix match)', () => {
  it('prefers the longest prefix and falls back when it is removed', () => {
    const t = new PeerTable<string>();
    t.set(net('10.244.0.0/16'), 'wide');
    t.set(net('10.244.2.0/24'), 'node-b');
    t.set(net('10.244.2.128/25'), 'narrow');
    expect(t.lookup(parseIp('10.244.2.200')!)).toBe('narrow');
    expect(t.lookup(parseIp('10.244.2.5')!)).toBe('node-b');
    expect(t.lookup(parseIp('10.244.9.5')!)).toBe('wide');
    expect(t.lookup(parseIp('10.245.0.1')!)).toBeUndefined();
    expect(t.delete(net('10.244.2.128/25'))).toBe(true);
    expect(t.delete(net('10.244.2.128/25'))).toBe(false);
    expect(t.lookup(parseIp('10.244.2.200')!)).toBe('node-b');
    expect(t.size).toBe(2);
  });

  it('handles /0, /32 and addresses above 2^31, in uint32 or int32 form', () => {
    const t = new PeerTable<string>();
    t.set(net('0.0.0.0/0'), 'default');
    t.set(net('250.1.2.3/32'), 'host');
    t.set(net('200.0.0.0/8'), 'high');
    const high = parseIp('250.1.2.3')!;
    expect(t.lookup(high)).toBe('host');
    expect(t.lookup(high | 0)).toBe('host');
    expect(t.lookup(parseIp('200.9.9.9')! | 0)).toBe('high');
    expect(t.lookup(parseIp('1.2.3.4')!)).toBe('default');
    expect([...t.entries()].map(([n, v]) => `${formatCidr(n)}=${v}`)).toEqual(['250.1.2.3/32=host', '200.0.0.0/8=high', '0.0.0.0/0=default']);
  });

  it('replaces an entry in place (same subnet, new value)', () => {
    const t = new PeerTable<string>();
    t.set(net('10.244.2.0/24'), 'old');
    t.set(net('10.244.2.0/24'), 'new');
    expect(t.size).toBe(1);
    expect(t.get(net('10.244.2.0/24'))).toBe('new');
  });

  it('agrees with a naive linear lookup over 20,000 random inserts, deletes and lookups', () => {
    const rand = rng(8);
    const t = new PeerTable<number>();
    const naive = new NaiveTable<number>();
    // Addresses from a small space (10.0.0.0/12 and one high /12) so that prefixes nest and collide often.
    const randomIp = () => ((rand() < 0.8 ? 0x0a000000 : 0xc8000000) | Math.floor(rand() * 0x100000)) >>> 0;
    const randomNet = (): Ipv4Net => {
      const len = [0, 8, 12, 16, 20, 22, 24, 24, 24, 26, 28, 32][Math.floor(rand() * 12)]!;
      return { addr: (randomIp() & mask(len)) >>> 0, len };
    };
    const known: Ipv4Net[] = [];
    let hits = 0;
    let lookups = 0;
    for (let op = 0; op < 20_000; op++) {
      const r = rand();
      if (r < 0.3) {
        const n = randomNet();
        t.set(n, op);
        naive.set(n, op);
        known.push(n);
      } else if (r < 0.45 && known.length > 0) {
        const n = known[Math.floor(rand() * known.length)]!;
        expect(t.delete(n)).toBe(naive.delete(n));
      } else {
        const addr = rand() < 0.5 && known.length > 0 ? (known[Math.floor(rand() * known.length)]!.addr + Math.floor(rand() * 256)) >>> 0 : randomIp();
        const got = t.lookup(addr);
        lookups++;
        if (got !== undefined) hits++;
        if (got !== naive.lookup(addr)) expect({ op, addr, got }).toEqual({ op, addr, got: naive.lookup(addr) });
      }
      expect(t.size).toBe(naive.entries.size);
    }
    // The walk must exercise both outcomes, or it proves little.
    expect(hits / lookups).toBeGreaterThan(0.3);
    expect(hits).toBeLessThan(lookups);
  });
});
