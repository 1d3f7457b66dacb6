/**
 * The UDP side of the data path as the forwarder sees it. Implemented with node:dgram
 * (dgram-transport.ts); tests use an in-memory network (test/support/udp-fakes.ts).
 */

export interface TransportHandlers {
  /** One received datagram and its sender's address (node:dgram has no batch receive). */
  readonly onDatagram: (msg: Buffer, fromAddress: string) => void;
  /** A datagram could not be sent; called once per failed datagram. */
  readonly onSendError: (err: Error) => void;
  /** The socket reported an error outside of a send (rare; logged by the backend). */
  readonly onSocketError: (err: Error) => void;
}

export interface UdpTransport {
  /** The port the socket is bound to. */
  readonly port: number;
  /** Starts delivering datagrams. Handlers are bound once, not per packet. */
  start(handlers: TransportHandlers): void;
  /**
   * Queues one datagram to an IPv4 literal. `packet` is handed over without a copy and must
   * not change until sent.
   */
  send(packet: Buffer, port: number, address: string): void;
  close(): Promise<void>;
}

export interface TransportOptions {
  readonly port: number;
  /** Default 0.0.0.0 (all addresses of the agent's namespace). */
  readonly address?: string;
  /** SO_RCVBUF and SO_SNDBUF (default 4 MiB; 0 keeps the kernel default); the kernel caps them at net.core.{r,w}mem_max. */
  readonly bufferBytes?: number;
}

/** Opens and binds a transport; rejects with a TwillError when the port cannot be bound. */
export type OpenTransport = (opts: TransportOptions) => Promise<UdpTransport>;
