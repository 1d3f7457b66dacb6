import type { Kernel } from '../kernel/index.js';
import type { TunOffload } from '../kernel/tun-types.js';
import type { Logger } from '../log.js';
import type { Lease, LeaseAttrs, LeaseEvent, NetworkConfig } from '../subnet/types.js';

/** The underlay interface the node talks to its peers on. */
export interface ExternalInterface {
  readonly name: string;
  readonly address: string;
  readonly mtu: number;
}

export interface BackendContext {
  readonly logger: Logger;
  readonly network: NetworkConfig;
  readonly ownLease: Lease;
  readonly iface: ExternalInterface;
  /** Runs every kernel change, bound to the agent's network namespace. */
  readonly kernel: Kernel;
  /** Name for a tunnel device, for backends that make one (--tun-name, default twill0). */
  readonly tunName: string;
  /** TCP offload on that device (--tun-offload; the udp backend's default is 'gro'). */
  readonly tunOffload?: TunOffload;
  /** Metrics hooks (reconcile passes, route changes); absent in tests that do not care. */
  readonly observer?: BackendObserver;
}

export type RouteOp = 'add' | 'replace' | 'delete';

/** What a route-programming backend reports as it works. */
export interface BackendObserver {
  reconcileDuration(seconds: number): void;
  routeChange(op: RouteOp, result: 'ok' | 'error'): void;
}

export type PeerState = 'programmed' | 'unreachable-on-l2' | 'pending' | 'error';

/** Packets and bytes through a tunnel: "in" = received from peers, "out" = sent to peers. */
export interface TrafficStatus {
  readonly packetsIn: number;
  readonly bytesIn: number;
  readonly packetsOut: number;
  readonly bytesOut: number;
}

export interface PeerStatus {
  readonly subnet: string;
  readonly publicIP: string;
  readonly backendType: string | null;
  readonly state: PeerState;
  readonly reason?: string;
  readonly since: string;
  /** Backends that carry packets themselves (udp): this peer's share. */
  readonly traffic?: TrafficStatus;
}

/** The whole tunnel, for backends that carry packets themselves (udp). */
export interface TunnelStatus extends TrafficStatus {
  /** The UDP port the tunnel listens on and sends to. */
  readonly port: number;
  /** ICMP errors written back into the device (net unreachable, time exceeded). */
  readonly icmpSent: number;
  /** TCP super-packets written into the device (TUN offload 'gro'), and the segments they carried. */
  readonly groSuperPackets: number;
  readonly groSegments: number;
  /** Set when the data path stopped on its own (e.g. the device was deleted). */
  readonly error?: string;
}

export interface BackendStatus {
  readonly type: string;
  readonly mtu: number;
  readonly device: string | null;
  readonly routes: number;
  readonly peers: readonly PeerStatus[];
  /** Packets dropped, by reason (udp). */
  readonly drops?: Readonly<Record<string, number>>;
  readonly tunnel?: TunnelStatus;
}

/** A running data path. The agent feeds it lease events; it never reads etcd itself. */
export interface Backend {
  start(): Promise<void>;
  applyPeerChanges(events: readonly LeaseEvent[]): Promise<void>;
  /** Stops timers and sockets. Routes stay, so that a restart is seamless. */
  stop(): Promise<void>;
  status(): BackendStatus;
}

/** One entry of the backend table (src/backend/index.ts). */
export interface BackendFactory {
  readonly type: string;
  /** The MTU pods should use, given the underlay interface's MTU. */
  mtu(ifaceMtu: number): number;
  /** What this backend publishes in the node's lease (flannel's shapes). */
  leaseAttrs(publicIP: string): LeaseAttrs;
  create(ctx: BackendContext): Backend;
}
