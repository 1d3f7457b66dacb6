import type { BackendDetails, TrafficStatus } from '../../status/types.js';
import type { StatusLines } from '../backend.js';
import type { UdpDatapath } from './data-plane.js';

/** The whole tunnel: packets and bytes each way, and what the data path did besides. */
export interface TunnelStatus extends TrafficStatus {
  /** The UDP port the tunnel listens on and sends to. */
  readonly port: number;
  /** ICMP errors written back into the device (net unreachable, time exceeded). */
  readonly icmpSent: number;
  /** ICMP errors not written: over the rate limit (ICMP_RATE_PER_SEC, bursts of ICMP_BURST). */
  readonly icmpSuppressed: number;
  /** Times the device was recreated after it failed (deleted, read error). */
  readonly deviceRecreated: number;
  /** Times the Network's route through the device was found gone and put back. */
  readonly routeRepaired: number;
  /** TCP super-packets written into the device (TUN offload 'gro'), and the segments they carried. */
  readonly groSuperPackets: number;
  readonly groSegments: number;
}

/** The udp backend's details in /v1/status (`backend.details`). */
export interface UdpDetails extends BackendDetails {
  readonly tunnel: TunnelStatus;
  /** Packets dropped, by reason. */
  readonly drops: Readonly<Record<string, number>>;
  /** What moves the packets: the native pump, or the Node.js reference (dgram). */
  readonly datapath: UdpDatapath;
  /** Native pump: which offloads are on (tunVnetHdr, udpGro, udpSegment). */
  readonly offloads?: Readonly<Record<string, boolean>>;
  /** Native pump: what its system calls carried (gsoSends, gsoSegments, udpGroReads, ...). */
  readonly pump?: Readonly<Record<string, number>>;
}

/** `twill status` lines; the details come as JSON from the agent, so each part may be missing. */
export function describeUdpStatus(details: BackendDetails): StatusLines {
  const { tunnel: t, drops, datapath, offloads } = details as Partial<UdpDetails>;
  const lines: [string, string][] = [];
  if (t) {
    const gro = `gro ${t.groSegments} segments in ${t.groSuperPackets} super-packets`;
    const icmp = `icmp sent ${t.icmpSent}${t.icmpSuppressed ? ` (${t.icmpSuppressed} rate-limited)` : ''}`;
    const recreated = t.deviceRecreated ? `, device recreated ${t.deviceRecreated} time(s)` : '';
    const rerouted = t.routeRepaired ? `, route put back ${t.routeRepaired} time(s)` : '';
    lines.push(['tunnel', `udp port ${t.port}: in ${t.packetsIn} pkt / ${t.bytesIn} B, out ${t.packetsOut} pkt / ${t.bytesOut} B, ${icmp}, ${gro}${recreated}${rerouted}`]);
  }
  if (datapath) {
    const on = Object.entries(offloads ?? {}).filter(([, v]) => v).map(([k]) => k);
    lines.push(['datapath', `${datapath}${offloads ? ` (offloads: ${on.length === 0 ? 'none' : on.join(', ')})` : ''}`]);
  }
  if (drops) {
    const nonZero = Object.entries(drops).filter(([, n]) => n > 0);
    lines.push(['drops', nonZero.length === 0 ? 'none' : nonZero.map(([r, n]) => `${r} ${n}`).join(', ')]);
  }
  return lines;
}
