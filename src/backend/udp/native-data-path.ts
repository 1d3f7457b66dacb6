/**
 * The udp data plane in C (src/kernel/udp-pump.ts): the pump's thread moves every packet; this
 * side keeps the peer list, swaps the pump's table once per batch of lease events (commit),
 * and turns the pump's counters into the same totals and per-peer traffic as the Node.js
 * reference reports. Per-peer counters live in the table they were counted in: at each swap the
 * old table's are folded into `carried`, so a peer's figures survive other peers' changes.
 */
import type { TunDevice } from '../../kernel/tun-types.js';
import type { UdpPump, PumpPeer } from '../../kernel/udp-pump.js';
import type { TwillError } from '../../errors.js';
import { formatCidr, type Ipv4Net } from '../../lib/ipv4.js';
import { DROP_REASONS, zeroDrops, type TrafficSnapshot } from './counters.js';
import type { DataPlane, DataPlaneTotals } from './data-plane.js';

type MutableTraffic = { -readonly [K in keyof TrafficSnapshot]: TrafficSnapshot[K] };

export class NativeDataPath implements DataPlane {
  readonly datapath = 'native';
  private readonly peers = new Map<string, PumpPeer>();
  /** The subnets of the pump's table, in its order (its counters come in that order). */
  private order: string[] = [];
  /** Counts from tables swapped out, per subnet still present. */
  private readonly carried = new Map<string, MutableTraffic>();
  private dirty = false;
  private tun: TunDevice | null;
  private stopped = false;

  constructor(
    private readonly pump: UdpPump,
    tun: TunDevice,
    /** The pump stopped by itself (device gone, socket failed): the backend recovers. */
    private readonly onFault: (err: TwillError) => void,
  ) {
    this.tun = tun;
  }

  start(): void {
    this.commit();
    if (this.tun) this.pump.start(this.tun, this.onFault);
  }

  setPeer(subnet: Ipv4Net, publicIP: string): void {
    const key = formatCidr(subnet);
    if (this.peers.get(key)?.publicIP === publicIP) return;
    this.peers.set(key, { subnet, publicIP });
    this.dirty = true;
  }

  deletePeer(subnet: Ipv4Net): void {
    if (this.peers.delete(formatCidr(subnet))) this.dirty = true;
  }

  commit(): void {
    if (!this.dirty || this.stopped) return;
    this.dirty = false;
    const keys = [...this.peers.keys()];
    const old = this.pump.setPeers([...this.peers.values()]);
    this.fold(old, this.order);
    this.order = keys;
    for (const key of this.carried.keys()) if (!this.peers.has(key)) this.carried.delete(key);
  }

  detachTun(): void {
    this.pump.stop();
    this.tun?.close();
    this.tun = null;
  }

  attachTun(tun: TunDevice): void {
    if (this.stopped) return tun.close();
    this.detachTun();
    this.tun = tun;
    this.pump.start(tun, this.onFault);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.pump.close(); // the thread first: it must not touch the device once it is closed
    this.tun?.close();
    this.tun = null;
  }

  peerTraffic(): Map<string, TrafficSnapshot> {
    const out = new Map<string, MutableTraffic>();
    for (const key of this.peers.keys()) out.set(key, { ...(this.carried.get(key) ?? ZERO) });
    const traffic = this.pump.counters()?.traffic ?? new Float64Array(0);
    this.order.forEach((key, i) => {
      const t = out.get(key);
      if (t) addTraffic(t, traffic, i);
    });
    return out;
  }

  totals(): DataPlaneTotals {
    const c = this.pump.counters();
    const drops = zeroDrops();
    if (c === null) return { traffic: ZERO, drops, icmpSent: 0, icmpSuppressed: 0, groSuperPackets: 0, groSegments: 0 };
    DROP_REASONS.forEach((reason, i) => (drops[reason] = c.drops[i + 1] ?? 0));
    const s = c.stats;
    const { tsoSuperPackets, tsoSegments, usoSuperPackets, usoSegments, gsoSends, gsoSegments, udpGroReads, udpGroSegments, sendmmsgCalls, recvmmsgCalls, wakeups } = s;
    return {
      traffic: { packetsIn: s.packetsIn, bytesIn: s.bytesIn, packetsOut: s.packetsOut, bytesOut: s.bytesOut },
      drops,
      icmpSent: s.icmpSent,
      icmpSuppressed: s.icmpSuppressed,
      groSuperPackets: s.groSuperPackets,
      groSegments: s.groSegments,
      pump: { tsoSuperPackets, tsoSegments, usoSuperPackets, usoSegments, gsoSends, gsoSegments, udpGroReads, udpGroSegments, sendmmsgCalls, recvmmsgCalls, wakeups },
      offloads: { tunVnetHdr: this.tun?.offload === 'gro', tunTso: this.tun?.tso === true, tunUso: this.tun?.uso === true, ...c.offloads },
    };
  }

  private fold(counts: Float64Array, order: readonly string[]): void {
    order.forEach((key, i) => {
      if (!this.peers.has(key)) return;
      const t = this.carried.get(key) ?? { ...ZERO };
      addTraffic(t, counts, i);
      this.carried.set(key, t);
    });
  }
}

const ZERO: TrafficSnapshot = { packetsIn: 0, bytesIn: 0, packetsOut: 0, bytesOut: 0 };

/** Adds entry i of the pump's [packetsIn, bytesIn, packetsOut, bytesOut]* layout. */
function addTraffic(t: MutableTraffic, counts: Float64Array, i: number): void {
  t.packetsIn += counts[4 * i] ?? 0;
  t.bytesIn += counts[4 * i + 1] ?? 0;
  t.packetsOut += counts[4 * i + 2] ?? 0;
  t.bytesOut += counts[4 * i + 3] ?? 0;
}
