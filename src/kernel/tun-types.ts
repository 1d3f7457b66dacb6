/**
 * The TUN device as the udp data path sees it: batches in, batches out. Implemented by the
 * N-API addon (src/kernel/tun.ts); tests use an in-memory fake with the same shape.
 */
export interface TunDevice {
  /** The interface name the kernel gave the device. */
  readonly name: string;
  /**
   * Starts reading: `onPackets` receives batches of whole IPv4 packets (one Buffer each),
   * many per wake-up. The Buffers belong to the receiver: they stay valid after the call
   * (dgram.send holds on to them until the datagram is out).
   */
  start(onPackets: (packets: readonly Buffer[]) => void): void;
  /** Writes packets into the device (towards local pods); returns how many the kernel took. */
  write(packets: readonly Buffer[]): number;
  /** Stops reading and closes the file descriptor; the kernel removes the device. */
  close(): void;
}
