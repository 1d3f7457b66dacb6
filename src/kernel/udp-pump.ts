/**
 * The udp packet pump (native/pump/, in the TUN addon): a thread of its own that moves packets
 * between a TUN device and a UDP socket, many per system call, with no JavaScript on the path.
 * This wrapper opens it, hands it a device and the peer table, reads its counters, and maps
 * its errno failures to TwillErrors. Offloads the kernel refuses are left off, never fatal.
 */
import { TwillError } from '../errors.js';
import { parseIp, type Ipv4Net } from '../lib/ipv4.js';
import { errnoName, isTunSysError, loadAddon, tunHandleOf, type NativeHandle, type TunAddon } from './tun.js';
import type { TunDevice } from './tun-types.js';

declare const pumpBrand: unique symbol;
type PumpHandle = { readonly [pumpBrand]: true };

/** What native/pump_napi.c adds to the addon. */
interface PumpAddon {
  pumpOpen(address: string, port: number, bufferBytes: number, offloads: number, ownAddr: number, ownLen: number, mtu: number, tunAddr: number): PumpHandle;
  pumpStart(pump: PumpHandle, tun: NativeHandle, onFault: (errno: number, where: string) => void): void;
  pumpStop(pump: PumpHandle): void;
  pumpSetPeers(pump: PumpHandle, peers: Uint32Array): Float64Array;
  pumpCounters(pump: PumpHandle): [Float64Array, Float64Array, Float64Array, number, number];
  pumpClose(pump: PumpHandle): void;
}

/** TW_OFF_* of native/pump/pump.h. */
const OFF_UDP_GRO = 2;
const OFF_UDP_SEGMENT = 4;

/** enum tw_stat of native/pump/pump.h, in order. */
export const PUMP_STATS = [
  'packetsOut', 'bytesOut', 'packetsIn', 'bytesIn',
  'icmpSent', 'icmpSuppressed',
  'groSuperPackets', 'groSegments',
  'gsoSends', 'gsoSegments',
  'udpGroReads', 'udpGroSegments',
  'sendmmsgCalls', 'recvmmsgCalls', 'wakeups',
  'tsoSuperPackets', 'tsoSegments',
  'usoSuperPackets', 'usoSegments',
] as const;
export type PumpStat = (typeof PUMP_STATS)[number];

/** Which socket offloads are on: UDP_GRO receives, UDP_SEGMENT sends (the device's are the TunDevice's). */
export interface PumpOffloads {
  readonly udpGro: boolean;
  readonly udpSegment: boolean;
}

export interface PumpCounters {
  readonly stats: Readonly<Record<PumpStat, number>>;
  /** By verdict code: index 0 is "pass" (unused), then DROP_REASONS in order. */
  readonly drops: Float64Array;
  /** The current table's per-peer counters, [packetsIn, bytesIn, packetsOut, bytesOut] in its order. */
  readonly traffic: Float64Array;
  readonly offloads: PumpOffloads;
}

export interface PumpPeer {
  readonly subnet: Ipv4Net;
  readonly publicIP: string;
}

export interface OpenPumpOptions {
  /** Bind address and port of the UDP socket. */
  readonly address: string;
  readonly port: number;
  /** SO_RCVBUF and SO_SNDBUF; 0 keeps the kernel's. */
  readonly bufferBytes: number;
  /** Ask for UDP_GRO and UDP_SEGMENT (each is used only if the kernel has it). */
  readonly udpOffloads: boolean;
  readonly ownSubnet: Ipv4Net;
  readonly mtu: number;
  /** The TUN's address: ICMP errors come from it. */
  readonly tunAddress: number;
}

export class UdpPump {
  #pump: PumpHandle | null;
  #running = false;

  private constructor(
    private readonly addon: PumpAddon,
    pump: PumpHandle,
  ) {
    this.#pump = pump;
  }

  /** Opens the socket; a port in use and other bind failures are TwillErrors naming the address. */
  static open(opts: OpenPumpOptions): UdpPump {
    const addon = loadAddon() as TunAddon & PumpAddon;
    const offloads = opts.udpOffloads ? OFF_UDP_GRO | OFF_UDP_SEGMENT : 0;
    try {
      const pump = addon.pumpOpen(opts.address, opts.port, opts.bufferBytes, offloads, opts.ownSubnet.addr, opts.ownSubnet.len, opts.mtu, opts.tunAddress);
      return new UdpPump(addon, pump);
    } catch (err) {
      throw pumpOpenError(err, `${opts.address}:${opts.port}`);
    }
  }

  get running(): boolean {
    return this.#running;
  }

  /** Starts the thread on an open device; onFault gets the error when it stops by itself. */
  start(tun: TunDevice, onFault: (err: TwillError) => void): void {
    const handle = tunHandleOf(tun);
    if (this.#pump === null || handle === null) throw new TwillError('TWILL_ERR_UDP_TUN', `the udp pump needs an open TUN device of the addon (${tun.name})`);
    this.addon.pumpStart(this.#pump, handle, (errno, where) => {
      this.#running = false;
      onFault(pumpFault(errno, where, tun.name));
    });
    this.#running = true;
  }

  /** Joins the thread; the device can be closed afterwards. */
  stop(): void {
    if (this.#pump !== null) this.addon.pumpStop(this.#pump);
    this.#running = false;
  }

  /** Swaps in a new table: once this returns, no packet sees the old one. Returns the old table's per-peer counters. */
  setPeers(peers: readonly PumpPeer[]): Float64Array {
    if (this.#pump === null) return new Float64Array(0);
    const list = new Uint32Array(peers.length * 3);
    peers.forEach((p, i) => list.set([p.subnet.addr, p.subnet.len, parseIp(p.publicIP) ?? 0], i * 3));
    return this.addon.pumpSetPeers(this.#pump, list);
  }

  counters(): PumpCounters | null {
    if (this.#pump === null) return null;
    const [raw, drops, traffic, offloads] = this.addon.pumpCounters(this.#pump);
    const stats = Object.fromEntries(PUMP_STATS.map((name, i) => [name, raw[i] ?? 0])) as Record<PumpStat, number>;
    return { stats, drops, traffic, offloads: { udpGro: (offloads & OFF_UDP_GRO) !== 0, udpSegment: (offloads & OFF_UDP_SEGMENT) !== 0 } };
  }

  /** Stops the thread and closes the socket. */
  close(): void {
    if (this.#pump === null) return;
    this.addon.pumpClose(this.#pump);
    this.#pump = null;
    this.#running = false;
  }
}

function pumpOpenError(err: unknown, where: string): TwillError {
  if (!isTunSysError(err)) return new TwillError('TWILL_ERR_UDP_SOCKET', `cannot open the udp pump's socket on ${where}: ${String(err)}`, { cause: err });
  const code = errnoName(err.errno);
  const details = { address: where, syscall: err.syscall, errno: code };
  if (code === 'EADDRINUSE') return new TwillError('TWILL_ERR_UDP_PORT_IN_USE', `UDP port ${where} is already in use (is flanneld still running?)`, { cause: err, details });
  return new TwillError('TWILL_ERR_UDP_SOCKET', `cannot bind the udp backend's socket to ${where}: ${err.syscall} failed (${code})`, { cause: err, details });
}

function pumpFault(errno: number, where: string, device: string): TwillError {
  const code = errnoName(errno);
  const what = where.startsWith('tun') ? `TUN device ${device}` : 'the UDP socket';
  return new TwillError(where.startsWith('tun') ? 'TWILL_ERR_KERNEL_TUN' : 'TWILL_ERR_UDP_SOCKET', `the udp pump stopped: ${where} on ${what} failed (${code})`, { details: { name: device, errno: code, where } });
}
