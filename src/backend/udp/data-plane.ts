/**
 * What the udp backend drives, whichever moves the packets: the native pump (native-data-path.ts,
 * the default) or the Node.js reference (data-path.ts, --udp-datapath dgram). Both take the same
 * peers and report the same counters, so status and metrics do not care which one runs.
 */
import type { TunDevice } from '../../kernel/tun-types.js';
import type { Ipv4Net } from '../../lib/ipv4.js';
import type { DropCounts, TrafficSnapshot } from './counters.js';

export type UdpDatapath = 'native' | 'dgram';

/** The tunnel's totals, as status() shows them. */
export interface DataPlaneTotals {
  readonly traffic: TrafficSnapshot;
  readonly drops: DropCounts;
  readonly icmpSent: number;
  readonly icmpSuppressed: number;
  readonly groSuperPackets: number;
  readonly groSegments: number;
  /** The native pump only: what its system calls carried (UDP_SEGMENT sends, UDP_GRO reads, batches). */
  readonly pump?: Readonly<Record<string, number>>;
  /** Which offloads are on (the native pump asks the kernel for each and runs without the ones refused). */
  readonly offloads?: Readonly<Record<string, boolean>>;
}

export interface DataPlane {
  readonly datapath: UdpDatapath;
  start(): void;
  setPeer(subnet: Ipv4Net, publicIP: string): void;
  deletePeer(subnet: Ipv4Net): void;
  /** Peer changes since the last commit take effect; once it returns, a removed peer gets and is sent nothing. */
  commit(): void;
  /** The device failed: stop using it and close it; the socket and the peers are kept. */
  detachTun(): void;
  /** A new device (after detachTun); after stop() it is closed instead. */
  attachTun(tun: TunDevice): void;
  stop(): Promise<void>;
  /** Per peer, by subnet text. */
  peerTraffic(): Map<string, TrafficSnapshot>;
  totals(): DataPlaneTotals;
}
