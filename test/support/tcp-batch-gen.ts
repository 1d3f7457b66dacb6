/**
 * Seeded random batches of TCP segments (and other packets) for the GRO differential test:
 * a few flows that mostly continue each other, broken now and then the ways that must end a
 * run (a gap, PSH, a short segment, SYN or FIN, another TTL, TOS, DF, ACK, window or option),
 * and packets GRO must leave alone (fragments, IP options, UDP, truncated, noise).
 */
import { int, type Rand } from './udp-packet-gen.js';

interface Flow {
  readonly src: number;
  readonly dst: number;
  readonly ports: number;
  seq: number;
  readonly mss: number;
  readonly options: Buffer;
}

function newFlow(rand: Rand, flows: readonly Flow[]): Flow {
  const twin = flows.length > 0 && rand() < 0.4 ? flows[int(rand, flows.length)]! : null; // same addresses, other ports
  const mss = rand() < 0.1 ? 4000 + int(rand, 5000) : 1 + int(rand, 1460);
  return {
    src: twin?.src ?? (0x0af40000 | int(rand, 0x10000)) >>> 0,
    dst: twin?.dst ?? (0x0af40000 | int(rand, 0x10000)) >>> 0,
    ports: (int(rand, 0x10000) * 0x10000 + int(rand, 0x10000)) >>> 0,
    seq: (int(rand, 0x10000) * 0x10000 + int(rand, 0x10000)) >>> 0,
    mss,
    options: Buffer.alloc(rand() < 0.3 ? 12 : 0, 1),
  };
}

/** A TCP/IPv4 segment of `flow` (IP checksum not set: GRO recomputes it, and copies the rest). */
function segment(rand: Rand, flow: Flow, payload: number, flags: number): Buffer {
  const thl = 20 + flow.options.length;
  const pkt = Buffer.alloc(20 + thl + payload);
  pkt[0] = 0x45;
  pkt.writeUInt16BE(pkt.length, 2);
  pkt.writeUInt16BE(int(rand, 0x10000), 4);
  pkt[6] = 0x40;
  pkt[8] = 64;
  pkt[9] = 6;
  pkt.writeUInt32BE(flow.src, 12);
  pkt.writeUInt32BE(flow.dst, 16);
  pkt.writeUInt32BE(flow.ports, 20);
  pkt.writeUInt32BE(flow.seq, 24);
  pkt.writeUInt32BE(7, 28);
  pkt[32] = (thl / 4) << 4;
  pkt[33] = flags;
  pkt.writeUInt16BE(502, 34);
  pkt.writeUInt16BE(int(rand, 0x10000), 36);
  flow.options.copy(pkt, 40);
  for (let i = 20 + thl; i < pkt.length; i += 97) pkt[i] = int(rand, 256);
  flow.seq = (flow.seq + payload) >>> 0;
  return pkt;
}

/** One field the kernel's GRO compares, changed; or the packet made unmergeable. */
function spoil(rand: Rand, pkt: Buffer): Buffer {
  const out = Buffer.from(pkt);
  const at = [1, 8, 6, 28, 34, 40, 24, 33, 0, 7, 2, 9][int(rand, 12)]!; // TOS, TTL, DF, ACK, window, option, seq, flags, IHL, fragment, length, protocol
  if (at === 40 && out.length <= 40) return out;
  if (at === 0) return Buffer.concat([Buffer.from([0x46]), out.subarray(1, 20), Buffer.alloc(4), out.subarray(20)]);
  if (at === 2) return out.subarray(0, int(rand, out.length));
  out[at] = at === 33 ? [0x10, 0x18, 0x02, 0x11, 0x12, 0x30, 0x00][int(rand, 7)]! : out[at]! ^ (1 + int(rand, 255));
  return out;
}

/** A batch of at most 64 packets, as one socket read burst could bring. */
export function tcpBatch(rand: Rand): Buffer[] {
  const flows: Flow[] = [];
  for (let k = 1 + int(rand, 4); k > 0; k--) flows.push(newFlow(rand, flows));
  const out: Buffer[] = [];
  for (let n = 1 + int(rand, 64); n > 0; n--) {
    const flow = flows[int(rand, flows.length)]!;
    const r = rand();
    if (r < 0.03) flow.seq = (flow.seq + int(rand, 3000) - 1500) >>> 0; // a gap or a repeat
    const short = rand() < 0.05;
    const pkt = segment(rand, flow, short ? int(rand, flow.mss) : flow.mss, rand() < 0.04 ? 0x18 : 0x10);
    if (r < 0.85) out.push(pkt);
    else if (r < 0.95) out.push(spoil(rand, pkt));
    else out.push(Buffer.from(Array.from({ length: int(rand, 60) }, () => int(rand, 256))));
  }
  return out;
}
