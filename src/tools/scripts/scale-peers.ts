/**
 * Pure: the fake peers of `twill bench scale`, shared by the bench (../bench/scale-*.ts) and its
 * driver program in the lab (scale-driver.ts), plus the parsers the driver reads the agent's
 * progress with. No I/O, so that the driver starts fast and the unit tests run it all.
 *
 * Peer i holds subnet number FIRST_FAKE_SUBNET + i of SCALE_NETWORK (10.1.0.0/24 onwards; the
 * real agent leases one of the first 100 free subnets from SubnetMin, inside 10.0.0.0/16). Its
 * PublicIP lies in PEER_SEGMENT, a segment that exists only as a second address on the host's
 * eth0: on-link, so host-gw installs `<subnet> via <PublicIP>` whether or not anyone answers
 * there. A peer's "generation" moves its PublicIP (a churn change of address).
 */
import { containsNet, formatCidr, formatIp, parseCidr } from '../../lib/ipv4.js';
import { formatLeaseValue, leaseKey } from '../../subnet/lease-format.js';
import type { LeaseAttrs } from '../../subnet/types.js';
import { prng } from '../../lib/prng.js';

export const SCALE_NETWORK = '10.0.0.0/8';
export const SCALE_SUBNET_LEN = 24;
/** Where the fake peers' PublicIPs live; the host gets PEER_SEGMENT_HOST on its eth0. */
export const PEER_SEGMENT = '198.18.64.0/18';
export const PEER_SEGMENT_HOST = '198.18.64.1/18';
export const ETCD_PREFIX = '/coreos.com/network';
/** Subnet numbers below this are left to real agents (10.0.0.0/16 with SCALE_NETWORK). */
const FIRST_FAKE_SUBNET = 256;
/** Usable PublicIPs: .2 up to the last address below the broadcast (.0 is the network, .1 the host). */
const PUBLIC_IP_POOL = 2 ** (32 - 18) - 3;
/** How far a new generation moves a peer's PublicIP within the pool. */
const GENERATION_SHIFT = 8191;
/** Most peers `--peers` may ask for; churn adds new ones above the ones present. */
export const MAX_FAKE_PEERS = 16_000;
/** The highest peer index the network holds (10.255.255.0/24 is the last subnet). */
export const MAX_PEER_INDEX = 2 ** (32 - 8 - (32 - SCALE_SUBNET_LEN)) - FIRST_FAKE_SUBNET - 1;

/** The lease fields every fake peer shares (its backend's): all but the PublicIP. */
export type PeerTemplate = Omit<LeaseAttrs, 'publicIP'>;

const net = (cidr: string) => {
  const n = parseCidr(cidr);
  if (!n) throw new Error(`bad CIDR ${cidr}`);
  return n;
};
const NETWORK = net(SCALE_NETWORK);
const SEGMENT = net(PEER_SEGMENT);

function checkIndex(i: number): void {
  if (!Number.isInteger(i) || i < 0 || i > MAX_PEER_INDEX) throw new RangeError(`fake peer index ${i} is outside 0..${MAX_PEER_INDEX}`);
}

/** Peer i's subnet: 10.1.0.0/24, 10.1.1.0/24, ... */
export function fakeSubnet(i: number): string {
  checkIndex(i);
  return formatCidr({ addr: (NETWORK.addr + (FIRST_FAKE_SUBNET + i) * 2 ** (32 - SCALE_SUBNET_LEN)) >>> 0, len: SCALE_SUBNET_LEN });
}

/** Peer i's PublicIP in generation `gen`: distinct for distinct peers of one generation (up to the pool's size). */
export function fakePublicIP(i: number, gen = 0): string {
  checkIndex(i);
  return formatIp((SEGMENT.addr + 2 + ((i + gen * GENERATION_SHIFT) % PUBLIC_IP_POOL)) >>> 0);
}

export interface FakeLease {
  readonly key: string;
  readonly value: string;
  readonly subnet: string;
  readonly publicIP: string;
}

export function fakeLease(i: number, gen: number, template: PeerTemplate): FakeLease {
  const subnet = fakeSubnet(i);
  const publicIP = fakePublicIP(i, gen);
  return { key: leaseKey(ETCD_PREFIX, net(subnet)), value: formatLeaseValue({ ...template, publicIP }), subnet, publicIP };
}

/** The peers present, index → generation, as what the agent must end up with: subnet → PublicIP. */
export function expectedPeers(present: ReadonlyMap<number, number>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [i, gen] of present) out.set(fakeSubnet(i), fakePublicIP(i, gen));
  return out;
}

export function sameMap<K, V>(a: ReadonlyMap<K, V>, b: ReadonlyMap<K, V>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

/** One write to etcd. */
export type KvOp = { readonly put: { readonly key: string; readonly value: string } } | { readonly del: string };

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** The body of one etcd v3 gateway `/v3/kv/txn` that applies every op (no compare: always succeeds). */
export function txnBody(ops: readonly KvOp[]): string {
  const success = ops.map((op) => ('put' in op ? { requestPut: { key: b64(op.put.key), value: b64(op.put.value) } } : { requestDeleteRange: { key: b64(op.del) } }));
  return JSON.stringify({ success });
}

/** Splits `items` into runs of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** A churn change: a peer leaves, or a put (a new peer joins, or a present one moves to a new PublicIP). */
export type ChurnChange = { readonly op: 'delete'; readonly index: number } | { readonly op: 'put'; readonly index: number; readonly gen: number };

export interface ChurnPlan {
  readonly changes: readonly ChurnChange[];
  /** What is present after the last change: index → generation. */
  readonly final: ReadonlyMap<number, number>;
}

/**
 * `count` changes in turn: a present peer leaves, a new peer joins (indices from `firstNew` up),
 * a present peer moves to a new PublicIP. The peer count stays within one of where it started.
 */
export function planChurn(present: ReadonlyMap<number, number>, firstNew: number, count: number, seed: number): ChurnPlan {
  const rand = prng(seed);
  const now = new Map(present);
  const keys = [...now.keys()];
  const pick = (): number => {
    const j = Math.floor(rand() * keys.length);
    return keys[j]!;
  };
  const changes: ChurnChange[] = [];
  let next = firstNew;
  for (let c = 0; c < count; c++) {
    const kind = keys.length === 0 ? 1 : c % 3;
    if (kind === 0) {
      const j = Math.floor(rand() * keys.length);
      const index = keys[j]!;
      keys[j] = keys[keys.length - 1]!;
      keys.pop();
      now.delete(index);
      changes.push({ op: 'delete', index });
    } else if (kind === 1) {
      checkIndex(next);
      now.set(next, 0);
      keys.push(next);
      changes.push({ op: 'put', index: next++, gen: 0 });
    } else {
      const index = pick();
      const gen = (now.get(index) ?? 0) + 1;
      now.set(index, gen);
      changes.push({ op: 'put', index, gen });
    }
  }
  return { changes, final: now };
}

/** The "Prefixes" count of the Main table in /proc/net/fib_triestat (routes, cheaply); null when absent. */
export function parseTrieStatPrefixes(text: string): number | null {
  const main = text.split(/^(?=\w+:\s*$)/m).find((s) => s.startsWith('Main:'));
  const m = main && /^\s*Prefixes:\s*(\d+)/m.exec(main);
  return m ? Number(m[1]) : null;
}

const RTF_GATEWAY = 0x2;

/** Little-endian hex, as /proc/net/route prints IPv4 addresses, to dotted quad. */
function hexIp(hex: string): string {
  const n = Number.parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join('.');
}

function maskLen(hex: string): number {
  let n = Number.parseInt(hex, 16) >>> 0;
  let len = 0;
  while (n) {
    len += n & 1;
    n >>>= 1;
  }
  return len;
}

/** Routes via a gateway in /proc/net/route (table main of the reader's namespace): destination CIDR → gateway. */
export function parseProcNetRoute(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [dst, gw, flags, mask] = [f[1]!, f[2]!, Number.parseInt(f[3]!, 16), f[7]!];
    if ((flags & RTF_GATEWAY) === 0) continue;
    out.set(`${hexIp(dst)}/${maskLen(mask)}`, hexIp(gw));
  }
  return out;
}

/** The routes of `routes` (destination → gateway) inside SCALE_NETWORK: what the agent made for fake peers. */
export function fakeRoutes(routes: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [dst, gw] of routes) {
    const n = parseCidr(dst);
    if (n && containsNet(NETWORK, n)) out.set(dst, gw);
  }
  return out;
}

/** The first sample of metric `name` in Prometheus text format, whatever its labels; null when absent. */
export function parseMetric(text: string, name: string): number | null {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    const value = rest.startsWith(' ') ? rest : rest.startsWith('{') ? rest.slice(rest.lastIndexOf('}') + 1) : null;
    if (value === null) continue;
    const v = Number(value.trim().split(/\s+/)[0]);
    return Number.isFinite(v) ? v : null;
  }
  return null;
}
