/**
 * The UDP transport over node:dgram: one udp4 socket bound to Backend.Port, sending from
 * that port to `<peer PublicIP>:<port>` as flannel does.
 */
import dgram from 'node:dgram';
import { TwillError } from '../../errors.js';
import type { OpenTransport, TransportHandlers, TransportOptions, UdpTransport } from './transport.js';

export const DEFAULT_SOCKET_BUFFER = 4 * 1024 * 1024;

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

// Peers are IPv4 literals: answering at once skips dns.lookup's isIP() and process.nextTick on every send.
function literalLookup(address: string, _options: unknown, callback: LookupCallback): void {
  callback(null, address, 4);
}

class DgramTransport implements UdpTransport {
  private handlers: TransportHandlers | null = null;
  private closed = false;
  // Bound once: the hot path passes these, never a fresh closure.
  private readonly onSent = (err: Error | null): void => {
    if (err) this.handlers?.onSendError(err);
  };
  private readonly onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    this.handlers?.onDatagram(msg, rinfo.address);
  };
  private readonly onError = (err: Error): void => {
    this.handlers?.onSocketError(err);
  };

  constructor(
    private readonly socket: dgram.Socket,
    readonly port: number,
  ) {
    socket.on('error', this.onError);
  }

  start(handlers: TransportHandlers): void {
    this.handlers = handlers;
    this.socket.on('message', this.onMessage);
  }

  send(packet: Buffer, port: number, address: string): void {
    if (this.closed) return; // dgram would throw: a batch racing close() is dropped instead
    // send(msg, port, address, cb): the form that takes the Buffer as is, without slicing a copy.
    this.socket.send(packet, port, address, this.onSent);
  }

  close(): Promise<void> {
    this.closed = true;
    this.handlers = null;
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve(); // already closed
      }
    });
  }
}

function bindError(err: unknown, opts: TransportOptions): TwillError {
  const where = `${opts.address ?? '0.0.0.0'}:${opts.port}`;
  const details = { port: opts.port, address: opts.address ?? '0.0.0.0' };
  if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
    return new TwillError('TWILL_ERR_UDP_PORT_IN_USE', `UDP port ${where} is already in use (is flanneld still running?)`, { cause: err, details });
  }
  return new TwillError('TWILL_ERR_UDP_SOCKET', `cannot bind the udp backend's socket to ${where}: ${(err as Error).message}`, { cause: err, details });
}

/**
 * Large buffers carry the socket through event-loop stalls (GC, a busy agent): with 20 ms
 * stalls at ~40k datagrams/s, 4 MiB lost none where the kernel default lost ~16%
 * (test/unit/udp-bench.test.ts). The kernel caps the size at rmem_max/wmem_max; a refusal is not fatal.
 */
function setBuffers(socket: dgram.Socket, bytes: number): void {
  try {
    socket.setRecvBufferSize(bytes);
    socket.setSendBufferSize(bytes);
  } catch {
    // Keep the kernel's defaults.
  }
}

export const openDgramTransport: OpenTransport = async (opts) => {
  const socket = dgram.createSocket({ type: 'udp4', lookup: literalLookup });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ port: opts.port, address: opts.address ?? '0.0.0.0', exclusive: true }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    socket.removeAllListeners();
    try {
      socket.close();
    } catch {
      // never bound: nothing to release
    }
    throw bindError(err, opts);
  }
  const buffers = opts.bufferBytes ?? DEFAULT_SOCKET_BUFFER;
  if (buffers > 0) setBuffers(socket, buffers);
  return new DgramTransport(socket, socket.address().port);
};
