/**
 * Software GRO for the TUN write path, pure (style rule 7). Accepted inbound TCP segments of
 * one flow that continue each other are merged into one TCP/IPv4 super-packet, which the
 * kernel then routes, bridges and hands to the pod's TCP in one pass, instead of once per
 * segment; the pod also answers with one ACK per super-packet instead of one per two
 * segments. The rules are Linux's tcp_gro_receive: same flow, IP header without options,
 * same TOS, TTL and DF, next sequence number, same ACK, window, data offset and options,
 * flags ACK (PSH ends a run), all segments but the last of the same size.
 *
 * A super-packet leaves with its segment size (the virtio header's gso_size) and its TCP
 * checksum field holding the pseudo-header sum, checksum partial, as the kernel expects.
 * A packet that merged with nothing leaves untouched, with segment size 0.
 */
import { writeHeaderChecksum } from '../checksum.js';

/** Largest IPv4 packet: a super-packet must fit the IP total length field. */
const IP_MAX = 65535;
/** Packets held before a batch is full: one uv read burst is 32 datagrams. */
export const COALESCE_BATCH_MAX = 64;

const TCP = 6;
const ACK = 0x10;
const PSH = 0x08;

/** A run of segments of one flow that continue each other; `first` is the head packet. */
interface Run {
  readonly first: Buffer;
  readonly parts: Buffer[];
  readonly hl: number; // IP + TCP header bytes
  readonly mss: number; // the first segment's payload
  bytes: number; // IP total length of the merged packet
  nextSeq: number;
  psh: boolean;
  closed: boolean;
}

/**
 * What take() hands to TunDevice.write(): packets, with a segment size each (0: as it is).
 * Merged packets live in the coalescer's own buffers, valid until the next take(): the TUN
 * write copies them into the kernel at once, and reusing the memory spares the garbage
 * collector ~200 MB/s of short-lived 64 KiB buffers at full speed.
 */
export interface CoalescedBatch {
  readonly packets: Buffer[];
  readonly segmentSizes: Uint32Array;
  /** How many of `packets` are super-packets, and how many segments they carry in all. */
  readonly superPackets: number;
  readonly mergedSegments: number;
}

export class TcpCoalescer {
  private runs: Run[] = [];
  private held = 0;
  private readonly sizes = new Uint32Array(COALESCE_BATCH_MAX);
  /** Merge buffers of IP_MAX bytes, one per super-packet of a batch, made on first use. */
  private readonly scratch: Buffer[] = [];

  /** Packets held since the last take(). */
  get size(): number {
    return this.held;
  }

  /** True once the batch should be taken before more packets are added. */
  get full(): boolean {
    return this.held >= COALESCE_BATCH_MAX;
  }

  /** Adds a whole, valid IPv4 packet (the forwarder checked its header). */
  add(pkt: Buffer): void {
    this.held++;
    const hl = mergeableHeaderLength(pkt);
    if (hl > 0) {
      const run = this.lastRunOf(pkt);
      if (run !== null && canAppend(run, pkt, hl)) return append(run, pkt, hl);
      this.runs.push(startRun(pkt, hl));
    } else {
      this.closeRunsBetween(pkt);
      this.runs.push(single(pkt));
    }
  }

  /** The batch so far, merged, in arrival order per flow; the coalescer starts empty again. */
  take(): CoalescedBatch {
    const runs = this.runs;
    const packets: Buffer[] = new Array<Buffer>(runs.length);
    const sizes = runs.length <= this.sizes.length ? this.sizes : new Uint32Array(runs.length);
    let merged = 0;
    let mergedSegments = 0;
    for (let i = 0; i < runs.length; i++) {
      const run = runs[i]!;
      const single = run.parts.length === 1;
      packets[i] = single ? run.first : merge(run, this.scratchBuffer(merged++));
      sizes[i] = single ? 0 : run.mss;
      if (!single) mergedSegments += run.parts.length;
    }
    this.runs = [];
    this.held = 0;
    return { packets, segmentSizes: sizes.subarray(0, packets.length), superPackets: merged, mergedSegments };
  }

  private scratchBuffer(i: number): Buffer {
    return (this.scratch[i] ??= Buffer.allocUnsafeSlow(IP_MAX));
  }

  /** The newest run of pkt's flow, or null: a packet may only join its flow's newest run. */
  private lastRunOf(pkt: Buffer): Run | null {
    for (let i = this.runs.length - 1; i >= 0; i--) {
      const run = this.runs[i]!;
      if (sameFlow(run.first, pkt)) return run;
    }
    return null;
  }

  /**
   * A TCP packet that cannot merge (SYN, FIN, no payload, IP options...) ends the runs between
   * its two addresses, so that no later segment overtakes it (its ports may sit elsewhere).
   */
  private closeRunsBetween(pkt: Buffer): void {
    if (pkt.length < 20 || pkt[9] !== TCP) return;
    for (const run of this.runs) {
      if (!run.closed && run.first.readInt32BE(12) === pkt.readInt32BE(12) && run.first.readInt32BE(16) === pkt.readInt32BE(16)) run.closed = true;
    }
  }
}

/** IP + TCP header length if pkt is a TCP segment GRO may merge, else 0. */
function mergeableHeaderLength(pkt: Buffer): number {
  if (pkt.length < 40 || pkt[0] !== 0x45 || pkt[9] !== TCP) return 0; // IPv4 without options, TCP
  if ((pkt.readUInt16BE(6) & 0x3fff) !== 0) return 0; // a fragment
  const thl = (pkt[32]! >> 4) << 2;
  const flags = pkt[33]!;
  if (thl < 20 || (flags & ~PSH) !== ACK) return 0; // ACK, maybe PSH; nothing else
  const hl = 20 + thl;
  const total = pkt.readUInt16BE(2);
  return total > hl && total === pkt.length ? hl : 0; // carries data, no trailing bytes
}

function single(pkt: Buffer): Run {
  return { first: pkt, parts: [pkt], hl: 0, mss: 0, bytes: pkt.length, nextSeq: 0, psh: false, closed: true };
}

function startRun(pkt: Buffer, hl: number): Run {
  const mss = pkt.length - hl;
  const psh = (pkt[33]! & PSH) !== 0;
  return { first: pkt, parts: [pkt], hl, mss, bytes: pkt.length, nextSeq: (pkt.readUInt32BE(24) + mss) >>> 0, psh, closed: psh };
}

/** b is a mergeable segment; a is any packet already held. */
function sameFlow(a: Buffer, b: Buffer): boolean {
  // header length and protocol, addresses, ports (bytes 0 and 9, 12-19, 20-23)
  return a.length >= 24 && a[0] === b[0] && a[9] === b[9] && a.readInt32BE(12) === b.readInt32BE(12) && a.readInt32BE(16) === b.readInt32BE(16) && a.readInt32BE(20) === b.readInt32BE(20);
}

function canAppend(run: Run, pkt: Buffer, hl: number): boolean {
  if (run.closed || hl !== run.hl) return false;
  const payload = pkt.length - hl;
  if (payload > run.mss || run.bytes + payload > IP_MAX) return false;
  if (pkt.readUInt32BE(24) !== run.nextSeq) return false;
  const f = run.first;
  // TOS; TTL; DF (bytes 1, 8, 6): the kernel would re-segment with the head's values
  if (f[1] !== pkt[1] || f[8] !== pkt[8] || (f[6]! & 0x40) !== (pkt[6]! & 0x40)) return false;
  // ACK number; data offset, flags except PSH, window; then the options, byte for byte
  if (f.readInt32BE(28) !== pkt.readInt32BE(28) || f[32] !== pkt[32] || f.readUInt16BE(34) !== pkt.readUInt16BE(34)) return false;
  return f.compare(pkt, 40, hl, 40, hl) === 0;
}

function append(run: Run, pkt: Buffer, hl: number): void {
  const payload = pkt.length - hl;
  run.parts.push(pkt);
  run.bytes += payload;
  run.nextSeq = (run.nextSeq + payload) >>> 0;
  if ((pkt[33]! & PSH) !== 0) run.psh = true;
  // PSH, or a short segment, ends the run (the kernel's gso_size must fit every segment but the last)
  if (run.psh || payload < run.mss) run.closed = true;
}

/** One packet: the head's headers, every payload in order, lengths and checksums fixed. */
function merge(run: Run, scratch: Buffer): Buffer {
  const out = scratch.subarray(0, run.bytes);
  run.first.copy(out, 0, 0, run.hl);
  let at = run.hl;
  for (const part of run.parts) at += part.copy(out, at, run.hl);
  out.writeUInt16BE(run.bytes, 2);
  if (run.psh) out[33] = out[33]! | PSH;
  writeHeaderChecksum(out);
  out.writeUInt16BE(pseudoHeaderSum(out, run.bytes - 20), 36);
  return out;
}

/** The folded, uncomplemented pseudo-header sum: what a checksum-partial TCP field holds. */
function pseudoHeaderSum(pkt: Buffer, tcpLength: number): number {
  let sum = pkt.readUInt16BE(12) + pkt.readUInt16BE(14) + pkt.readUInt16BE(16) + pkt.readUInt16BE(18) + TCP + tcpLength;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}
