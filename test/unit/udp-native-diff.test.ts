// Issue 15, section 3: the C packet functions (native/packet/, through the twill_packet addon)
// against the TypeScript reference, on seeded random and mutated packets and peer tables:
// the same verdict, the same bytes out, the same ICMP errors, the same drop counts.
import { describe, expect, it } from 'vitest';
import { decrementTtl, headerChecksumValid, onesSum, writeHeaderChecksum } from '../../src/backend/udp/checksum.js';
import { DROP_REASONS } from '../../src/backend/udp/counters.js';
import { Forwarder, type UdpPeer } from '../../src/backend/udp/forward.js';
import { icmpErrorAllowed } from '../../src/backend/udp/icmp.js';
import { checkHeader, parseIpv4Header } from '../../src/backend/udp/packet.js';
import { PeerTable } from '../../src/backend/udp/peer-table.js';
import { formatIp, mask } from '../../src/lib/ipv4.js';
import { loadNativePacket, type NativeForwarder, type NativeTable } from '../support/native-packet.js';
import { rng } from '../support/rng.js';
import { bigWorld, inside, int, mutate, noise, randomWorld, someAddress, validPacket, type Rand, type World } from '../support/udp-packet-gen.js';

const native = loadNativePacket();
const NAMES = native.reasonNames();
const name = (code: number): string => NAMES[code] ?? `code ${code}`;
const hex = (b: Buffer | null): string | null => (b === null ? null : b.toString('hex'));

interface Mismatch {
  readonly what: string;
  readonly ts: unknown;
  readonly c: unknown;
  readonly pkt: string;
}

/** One peer list loaded into both implementations. */
class Pair {
  readonly ts: Forwarder;
  /** TS peer object → its index in the build list (the last setPeer for its subnet). */
  readonly index = new Map<UdpPeer, number>();
  readonly table: NativeTable;
  readonly fwd: NativeForwarder;
  passed = 0;

  constructor(readonly world: World) {
    // A bucket that never runs dry: the rate limit is the pump's business, not the functions'.
    this.ts = new Forwarder({ ownSubnet: world.own, tunAddress: world.tunAddress, mtu: world.mtu, icmpLimit: { ratePerSec: 1, burst: 1e12 }, now: () => 0 });
    world.peers.forEach((p, i) => this.index.set(this.ts.setPeer(p.net, formatIp(p.publicIP))!, i));
    this.table = native.tableBuild(new Uint32Array(world.peers.flatMap((p) => [p.net.addr, p.net.len, p.publicIP])))!;
    this.fwd = native.forwarder(world.own.addr, world.own.len, world.mtu);
  }
}

class Differ {
  readonly mismatches: Mismatch[] = [];
  compared = 0;
  /** How often each verdict came up, per direction ('out pass', 'in spoofed-source', 'icmp sent', …). */
  readonly seen = new Map<string, number>();

  private count(key: string): void {
    this.seen.set(key, (this.seen.get(key) ?? 0) + 1);
  }

  same(what: string, ts: unknown, c: unknown, pkt: Buffer): void {
    this.compared++;
    if (JSON.stringify(ts) !== JSON.stringify(c) && this.mismatches.length < 20) this.mismatches.push({ what, ts, c, pkt: pkt.toString('hex') });
  }

  /** Header check, parse, ICMP eligibility and the checksum helpers. */
  header(pkt: Buffer, rand: Rand): void {
    this.same('checkHeader', checkHeader(pkt) ?? 'pass', name(native.checkHeader(pkt)), pkt);
    const p = parseIpv4Header(pkt);
    const c = native.parse(pkt);
    const h = p.ok ? p.header : null;
    this.same('parse', h ? [h.headerLength, h.totalLength, h.ttl, h.protocol, h.fragmentOffset, h.checksum, h.src, h.dst] : p.ok ? null : p.reason, typeof c === 'number' ? name(c) : c, pkt);
    this.same('icmpAllowed', checkHeader(pkt) === null && icmpErrorAllowed(pkt), native.icmpAllowed(pkt), pkt);
    const start = int(rand, pkt.length + 1);
    const end = start + int(rand, pkt.length - start + 1);
    this.same('onesSum', onesSum(pkt, start, end), native.onesSum(pkt, start, end), pkt);
    const hl = (pkt[0] ?? 0) & 0x0f;
    if (hl * 4 <= pkt.length) this.same('headerChecksumValid', headerChecksumValid(pkt, hl * 4), native.headerChecksumValid(pkt, hl * 4), pkt);
    if (checkHeader(pkt) !== null) return;
    const [a, b] = [Buffer.from(pkt), Buffer.from(pkt)];
    this.same('decrementTtl', [decrementTtl(a), hex(a)], [native.decrementTtl(b), hex(b)], pkt);
    writeHeaderChecksum(a);
    native.writeHeaderChecksum(b);
    this.same('writeHeaderChecksum', hex(a), hex(b), pkt);
  }

  /** TUN → wire: verdict, peer, bytes out, and the ICMP error for a no-route or expired TTL. */
  outbound(pair: Pair, pkt: Buffer): void {
    const [a, b] = [Buffer.from(pkt), Buffer.from(pkt)];
    const v = pair.ts.outbound(a);
    const [code, peer] = native.outbound(pair.fwd, pair.table, b);
    const tsVerdict = typeof v === 'string' ? v : ['pass', pair.index.get(v)];
    const cVerdict = code === 0 ? ['pass', peer] : name(code);
    this.same('outbound', [tsVerdict, hex(a)], [cVerdict, hex(b)], pkt);
    if (code === 0) pair.passed++;
    this.count(`out ${name(code)}`);
    if (v === 'no-route' || v === 'ttl-expired') this.icmp(pair, v, a, code, b);
  }

  /** Wire → TUN: the acceptance rules, bytes to the TUN, and the ICMP error for an expired TTL. */
  inbound(pair: Pair, pkt: Buffer, from: number): void {
    const [a, b] = [Buffer.from(pkt), Buffer.from(pkt)];
    const v = pair.ts.inbound(a, formatIp(from));
    const code = native.inbound(pair.fwd, pair.table, b, from);
    this.same('inbound', [v ?? 'pass', hex(a)], [name(code), hex(b)], pkt);
    if (code === 0) pair.passed++;
    this.count(`in ${name(code)}`);
    if (v === 'ttl-expired') this.icmp(pair, v, a, code, b);
  }

  private icmp(pair: Pair, reason: 'no-route' | 'ttl-expired', a: Buffer, code: number, b: Buffer): void {
    const reply = native.icmpFor(code, b, pair.world.tunAddress);
    this.same(`icmp ${reason}`, hex(pair.ts.icmpFor(a, reason)), hex(reply), a);
    this.count(reply === null ? 'icmp refused' : `icmp ${reason}`);
  }

  /** The drop counters after a world's packets, and the packets passed. */
  counters(pair: Pair): void {
    const cDrops = native.drops(pair.fwd);
    const t = pair.ts.counters.traffic;
    const ts = Object.fromEntries(DROP_REASONS.map((r) => [r, pair.ts.counters.drops[r]]));
    const c = Object.fromEntries(DROP_REASONS.map((r) => [r, cDrops[NAMES.indexOf(r)]]));
    this.same('drop counts', [ts, t.packetsIn + t.packetsOut], [c, pair.passed], Buffer.alloc(0));
  }
}

/** A packet and the address it arrives from: valid, from a peer's pod to ours, mutated or noise. */
function nextPacket(rand: Rand, w: World): { pkt: Buffer; from: number } {
  const peer = w.peers.length > 0 ? w.peers[int(rand, w.peers.length)]! : null;
  const stranger = rand() < 0.5 && peer ? w.peers[int(rand, w.peers.length)]!.publicIP : (int(rand, 0x10000) * 0x10000 + int(rand, 0x10000)) >>> 0;
  const r = rand();
  if (r < 0.25 && peer) {
    const pkt = validPacket(rand, w, inside(rand, peer.net), rand() < 0.8 ? inside(rand, w.own) : someAddress(rand, w));
    return { pkt: rand() < 0.3 ? mutate(rand, pkt) : pkt, from: rand() < 0.85 ? peer.publicIP : stranger };
  }
  if (r < 0.55) return { pkt: validPacket(rand, w), from: stranger };
  if (r < 0.9) return { pkt: mutate(rand, validPacket(rand, w)), from: stranger };
  return { pkt: noise(rand), from: stranger };
}

function runWorld(d: Differ, rand: Rand, world: World, packets: number): void {
  const pair = new Pair(world);
  for (let i = 0; i < packets; i++) {
    const { pkt, from } = nextPacket(rand, world);
    d.header(pkt, rand);
    d.outbound(pair, pkt);
    d.inbound(pair, pkt, from);
  }
  d.counters(pair);
}

/** Addresses worth asking a table about: inside peers, at their edges, anywhere. */
function probes(rand: Rand, world: World, n: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const p = world.peers[int(rand, Math.max(1, world.peers.length))];
    const r = rand();
    if (!p || r < 0.2) out[i] = someAddress(rand, world);
    else if (r < 0.6) out[i] = inside(rand, p.net);
    else if (r < 0.7) out[i] = p.net.addr;
    else if (r < 0.8) out[i] = (p.net.addr | ~mask(p.net.len)) >>> 0;
    else if (r < 0.9) out[i] = (p.net.addr - 1) >>> 0;
    else out[i] = (p.net.addr + 2 ** (32 - p.net.len)) >>> 0;
  }
  return out;
}

function compareLookups(d: Differ, rand: Rand, world: World, n: number): void {
  const ts = new PeerTable<number>();
  world.peers.forEach((p, i) => ts.set(p.net, i));
  const c = native.tableBuild(new Uint32Array(world.peers.flatMap((p) => [p.net.addr, p.net.len, p.publicIP])))!;
  d.same('table size', ts.size, native.tableSize(c), Buffer.alloc(0));
  const ips = probes(rand, world, n);
  const got = new Int32Array(n);
  native.tableLookupMany(c, ips, got);
  for (let i = 0; i < n; i++) d.same(`lookup ${formatIp(ips[i]!)}`, ts.lookup(ips[i]!) ?? -1, got[i], Buffer.alloc(0));
}

describe('C packet functions (native/packet/) against the TypeScript reference', () => {
  it('names the drop reasons as counters.ts does, in the same order', () => {
    expect(NAMES).toEqual(['pass', ...DROP_REASONS]);
  });

  it('parse, checksum, TTL, both forward directions and ICMP: 80 random peer tables, 120,000 packets', () => {
    const rand = rng(15_001);
    const d = new Differ();
    for (let w = 0; w < 80; w++) runWorld(d, rand, randomWorld(rand, w === 0 ? 0 : int(rand, 300)), 1_500);
    expect(d.mismatches).toEqual([]);
    expect(d.compared).toBeGreaterThan(500_000);
    // The walk reaches every verdict of both directions, and both kinds of ICMP error.
    const outs = ['pass', 'truncated', 'not-ipv4', 'bad-header', 'length-mismatch', 'own-subnet', 'no-route', 'ttl-expired'];
    const ins = ['pass', 'oversize', 'unknown-peer', 'truncated', 'not-ipv4', 'bad-header', 'length-mismatch', 'bad-checksum', 'spoofed-source', 'not-for-us', 'ttl-expired'];
    const keys = [...outs.map((r) => `out ${r}`), ...ins.map((r) => `in ${r}`), 'icmp no-route', 'icmp ttl-expired', 'icmp refused'];
    expect(keys.filter((k) => (d.seen.get(k) ?? 0) < 100)).toEqual([]);
  }, 30_000); // seconds alone; far more on a busy machine

  it('a table of 10,000 peers: 30,000 packets both ways and 100,000 lookups', () => {
    const rand = rng(15_002);
    const d = new Differ();
    const world = bigWorld(rand, 10_000);
    runWorld(d, rand, world, 30_000);
    compareLookups(d, rand, world, 100_000);
    expect(d.mismatches).toEqual([]);
    expect([d.seen.get('out pass'), d.seen.get('in pass')].every((n) => (n ?? 0) > 1_000)).toBe(true);
  }, 30_000); // seconds alone; far more on a busy machine

  it('longest-prefix lookups on 200 random tables with nested, repeated and /0 or /32 prefixes', () => {
    const rand = rng(15_003);
    const d = new Differ();
    for (let w = 0; w < 200; w++) compareLookups(d, rand, randomWorld(rand, int(rand, 400)), 2_000);
    expect(d.mismatches).toEqual([]);
  });

  it('refuses a prefix length over 32 instead of building a wrong table', () => {
    expect(native.tableBuild(new Uint32Array([0x0a000000, 33, 1]))).toBeNull();
    expect(native.tableSize(native.tableBuild(new Uint32Array(0))!)).toBe(0);
  });
});
