/**
 * The TUN device as the udp data path sees it: batches in, batches out. Implemented by the
 * N-API addon (src/kernel/tun.ts); tests use an in-memory fake with the same shape.
 */

/**
 * TCP offload between the kernel and the data path (virtio_net_hdr on every frame, as
 * wireguard-go and tailscale use it):
 * - 'off': every packet is an ordinary IPv4 packet of at most the device's MTU;
 * - 'gro': write() also takes TCP/IPv4 super-packets (many segments of one flow merged),
 *   so the kernel routes, bridges and delivers them to the pod's TCP in one pass.
 */
export type TunOffload = 'off' | 'gro';

export interface TunDevice {
  /** The interface name the kernel gave the device. */
  readonly name: string;
  /** The offload in effect (what the device was opened with). */
  readonly offload: TunOffload;
  /** Reads may be TCP super-packets (TSO was asked for and the kernel took it); only the udp pump reads those. */
  readonly tso?: boolean;
  /** Reads may also be UDP super-packets (USO, where the kernel has it). */
  readonly uso?: boolean;
  /**
   * Starts reading: `onPackets` receives batches of whole IPv4 packets (one Buffer each),
   * many per wake-up. The Buffers belong to the receiver: they stay valid after the call
   * (dgram.send holds on to them until the datagram is out).
   */
  start(onPackets: (packets: readonly Buffer[]) => void): void;
  /**
   * Writes packets into the device (towards local pods); returns how many the kernel took.
   * With offload 'gro', segmentSizes[i] > 0 marks packets[i] as a TCP/IPv4 super-packet cut
   * into segments of that many payload bytes, its TCP checksum field holding the
   * pseudo-header sum (see src/backend/udp/offload/coalesce.ts).
   */
  write(packets: readonly Buffer[], segmentSizes?: Uint32Array): number;
  /** Stops reading and closes the file descriptor; the kernel removes the device. */
  close(): void;
}
