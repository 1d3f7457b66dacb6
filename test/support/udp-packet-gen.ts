/**
 * Seeded random peer tables and IPv4 packets for the udp data path's differential test:
 * valid packets between peers, then mutated ones (byte flips, truncations, bad IHL or total
 * length, fragments, ICMP errors, TTL 0 and 1, unknown destinations, special addresses).
 */
import { writeHeaderChecksum } from '../../src/backend/udp/checksum.js';
import { mask, type Ipv4Net } from '../../src/lib/ipv4.js';

export type Rand = () => number;

export interface GenPeer {
  readonly net: Ipv4Net;
  readonly publicIP: number;
}

export interface World {
  readonly own: Ipv4Net;
  readonly peers: readonly GenPeer[];
  readonly mtu: number;
  readonly tunAddress: number;
}

export const int = (rand: Rand, n: number): number => Math.floor(rand() * n);
const pick = <T>(rand: Rand, xs: readonly T[]): T => xs[int(rand, xs.length)]!;
const u32 = (rand: Rand): number => (int(rand, 0x10000) * 0x10000 + int(rand, 0x10000)) >>> 0;
const netOf = (addr: number, len: number): Ipv4Net => ({ addr: (addr & mask(len)) >>> 0, len });

/** A random address inside `net`. */
export function inside(rand: Rand, net: Ipv4Net): number {
  return (net.addr | (u32(rand) & ~mask(net.len))) >>> 0;
}

/** A peer list around one /16 (so prefixes nest and overlap our own), with repeats and shared PublicIPs. */
export function randomWorld(rand: Rand, peerCount: number): World {
  const base = (0x0a000000 | (int(rand, 256) << 16)) >>> 0; // 10.x.0.0/16
  const own = netOf(base | (int(rand, 256) << 8), pick(rand, [24, 24, 20, 25, 28, 32, 16]));
  const pool = Array.from({ length: 1 + int(rand, peerCount) }, () => (rand() < 0.2 ? u32(rand) : (0xc6120000 | int(rand, 0x10000)) >>> 0));
  const peers: GenPeer[] = [];
  for (let i = 0; i < peerCount; i++) {
    if (peers.length > 0 && rand() < 0.05) {
      peers.push({ net: pick(rand, peers).net, publicIP: pick(rand, pool) }); // the same subnet again: replaced
      continue;
    }
    const len = rand() < 0.7 ? 24 : pick(rand, [0, 8, 16, 18, 20, 22, 23, 25, 26, 28, 30, 31, 32]);
    const addr = rand() < 0.9 ? (base | int(rand, 0x10000)) >>> 0 : u32(rand);
    peers.push({ net: netOf(addr, len), publicIP: pick(rand, pool) });
  }
  return { own, peers, mtu: pick(rand, [1472, 1500, 9000, 576]), tunAddress: own.addr };
}

/** `count` distinct /24s in 10.0.0.0/8, PublicIPs in 198.18.64.0/18, as a large cluster's leases. */
export function bigWorld(rand: Rand, count: number): World {
  const seen = new Set<number>();
  const peers: GenPeer[] = [];
  const own = netOf(0x0a000000 | (int(rand, 0x10000) << 8), 24);
  while (peers.length < count) {
    const net = netOf(0x0a000000 | (int(rand, 0x10000) << 8), 24);
    if (seen.has(net.addr) || net.addr === own.addr) continue;
    seen.add(net.addr);
    peers.push({ net, publicIP: (0xc6124000 | int(rand, 0x4000)) >>> 0 });
  }
  return { own, peers, mtu: 1472, tunAddress: own.addr };
}

const SPECIAL = [0x00000000, 0x7f000001, 0xe0000005, 0xefffffff, 0xf0000001, 0xffffffff, 0x00000001];

/** An address a packet might carry: a peer's pod, one of ours, a stranger, or a special one. */
export function someAddress(rand: Rand, world: World): number {
  const r = rand();
  if (r < 0.55 && world.peers.length > 0) return inside(rand, pick(rand, world.peers).net);
  if (r < 0.8) return inside(rand, world.own);
  if (r < 0.93) return u32(rand);
  return pick(rand, SPECIAL);
}

const ICMP_TYPES = [0, 3, 4, 5, 8, 11, 12, 13, 255];

function payloadFor(rand: Rand, protocol: number, mtu: number): Buffer {
  const long = rand() < 0.03;
  const payload = Buffer.alloc(long ? mtu - 40 + int(rand, 80) : int(rand, 64));
  for (let i = 0; i < payload.length && i < 64; i++) payload[i] = int(rand, 256);
  if (protocol === 1 && payload.length > 0) payload[0] = pick(rand, ICMP_TYPES);
  return payload;
}

/** A well-formed IPv4 packet with a valid header checksum. */
export function validPacket(rand: Rand, world: World, src = someAddress(rand, world), dst = someAddress(rand, world)): Buffer {
  const protocol = pick(rand, [1, 1, 6, 17, 17, 47, int(rand, 256)]);
  const options = rand() < 0.1 ? 4 * (1 + int(rand, 10)) : 0;
  const payload = payloadFor(rand, protocol, world.mtu);
  const hl = 20 + options;
  const pkt = Buffer.alloc(hl + payload.length);
  pkt[0] = 0x40 | (hl >>> 2);
  pkt[1] = int(rand, 256);
  pkt.writeUInt16BE(pkt.length, 2);
  pkt.writeUInt16BE(int(rand, 0x10000), 4);
  const frag = rand() < 0.1 ? int(rand, 0x2000) : 0;
  pkt.writeUInt16BE(((rand() < 0.5 ? 0x4000 : 0) | (rand() < 0.1 ? 0x2000 : 0) | frag) & 0xffff, 6);
  pkt[8] = pick(rand, [0, 1, 2, 64, 64, 255, int(rand, 256)]);
  pkt[9] = protocol;
  pkt.writeUInt32BE(src, 12);
  pkt.writeUInt32BE(dst, 16);
  for (let i = 20; i < hl; i++) pkt[i] = int(rand, 256);
  payload.copy(pkt, hl);
  writeHeaderChecksum(pkt);
  return pkt;
}

/** One way of breaking a packet; the header checksum is re-signed half the time so later checks are reached. */
export function mutate(rand: Rand, pkt: Buffer): Buffer {
  let out = Buffer.from(pkt);
  switch (int(rand, 8)) {
    case 0:
      for (let k = 1 + int(rand, 3); k > 0 && out.length > 0; k--) out[int(rand, out.length)] = int(rand, 256);
      break;
    case 1:
      out = out.subarray(0, int(rand, out.length + 1));
      break;
    case 2:
      out = Buffer.concat([out, Buffer.alloc(1 + int(rand, 8), int(rand, 256))]);
      break;
    case 3:
      out[0] = (out[0]! & 0xf0) | int(rand, 16); // IHL anywhere in 0..15
      break;
    case 4:
      out.writeUInt16BE(pick(rand, [0, 19, 20, out.length - 1, out.length + 1, int(rand, 0x10000)]) & 0xffff, 2);
      break;
    case 5:
      out[0] = (int(rand, 16) << 4) | (out[0]! & 0x0f); // version
      break;
    case 6:
      out[8] = int(rand, 3); // TTL 0, 1, 2
      break;
    default:
      out[11] = out[11]! ^ (1 + int(rand, 255)); // checksum only
      return out;
  }
  if (rand() < 0.5 && out.length >= 20 && (out[0]! & 0x0f) * 4 <= out.length) writeHeaderChecksum(out);
  return out;
}

/** Random bytes of a random length, sometimes starting like an IPv4 header. */
export function noise(rand: Rand): Buffer {
  const out = Buffer.alloc(int(rand, 90));
  for (let i = 0; i < out.length; i++) out[i] = int(rand, 256);
  if (out.length > 0 && rand() < 0.5) out[0] = 0x45;
  return out;
}
