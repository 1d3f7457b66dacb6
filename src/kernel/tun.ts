/**
 * The TUN device, backed by the N-API addon in native/ (built by `node-gyp rebuild` at
 * `npm ci`). The addon opens /dev/net/tun (optionally inside a named network namespace, from
 * a short-lived thread so the process never moves), reads batches of up to 64 packets per
 * wake-up into one slab (see TunReadMode); this module cuts the slab into Buffers and maps
 * errno failures to TwillErrors. Only src/kernel/ loads the addon (style rule 1).
 */
import { Buffer } from 'node:buffer';
import { createRequire } from 'node:module';
import { getSystemErrorName } from 'node:util';
import { TwillError, type ErrorCode } from '../errors.js';
import { netnsPath } from './netns-path.js';
import type { TunDevice, TunOffload } from './tun-types.js';

const ADDON_PATH = '../../build/Release/twill_tun.node'; // from src/kernel and dist/kernel alike
const requireAddon = createRequire(import.meta.url);

/** Linux IFNAMSIZ minus the terminating NUL. */
export const TUN_NAME_MAX = 15;

declare const handleBrand: unique symbol;
export type NativeHandle = { readonly [handleBrand]: true };

/** What native/tun.c exports. */
export interface TunAddon {
  /** offload: OFFLOAD_* of native/tun.h (1: virtio headers, GRO writes; 2: TSO reads); returns the bits in effect. */
  open(name: string, nsPath: string | null, offload: number): { handle: NativeHandle; name: string; offload: number };
  /** mode 0: a reader thread hands batches over; 1: a uv_poll handle on this thread's loop; 2: adaptive. */
  start(handle: NativeHandle, onSlab: (slab: ArrayBuffer) => void, mode: 0 | 1 | 2): void;
  /** Adaptive mode: how often reading moved to the thread, and back to the loop. */
  readerSwitches(handle: NativeHandle): [number, number];
  /**
   * counters[0] += drops on a full queue (EAGAIN/ENOBUFS), counters[1] += rejects (other errno).
   * segmentSizes[i] > 0 (virtio headers on): packets[i] is a TCP/IPv4 super-packet of that MSS.
   */
  write(handle: NativeHandle, packets: readonly Buffer[], counters: Float64Array, segmentSizes?: Uint32Array): number;
  close(handle: NativeHandle): void;
}

/** A failed system call as the addon reports it (errno is positive). */
export interface TunSysError extends Error {
  errno: number;
  syscall: string;
}

/**
 * How packets are read:
 * - 'poll' watches the fd on the JS thread's own event loop: one wake-up per burst, the
 *   lowest latency (on the 2-core lab, 0.16 ms less per idle round trip than 'thread');
 * - 'thread' reads on a thread of its own and hands batches over: two wake-ups (the reader's,
 *   then the JS thread's), but the read() calls run beside the JS thread (on the 2-core lab,
 *   about 15% more single-stream TCP throughput);
 * - 'adaptive' reads like 'poll' until four wake-ups in a row find a full batch, then like
 *   'thread' until the device has been quiet for 50 ms.
 */
export type TunReadMode = 'poll' | 'thread' | 'adaptive';
export const DEFAULT_TUN_READ_MODE: TunReadMode = 'adaptive';
const READ_MODE_CODES: Readonly<Record<TunReadMode, 0 | 1 | 2>> = { thread: 0, poll: 1, adaptive: 2 };

export interface OpenTunOptions {
  /** Interface name (at most 15 bytes; `tun%d` lets the kernel pick). */
  readonly name: string;
  /** Create the device inside this named namespace (/var/run/netns/NAME) or namespace path. */
  readonly netns?: string;
  /**
   * Called once if reading fails for good (the device was deleted under us). Without it the
   * error is thrown as an uncaught exception: the data path must not die silently.
   */
  readonly onError?: (err: TwillError) => void;
  /** Default DEFAULT_TUN_READ_MODE. */
  readonly readMode?: TunReadMode;
  /** Default 'off'. */
  readonly offload?: TunOffload;
  /** With offload 'gro', also ask for TSO reads (TCP super-packets out of the device): for the udp pump only. */
  readonly tso?: boolean;
}

/** The size of struct virtio_net_hdr, in front of every frame once offload is on. */
export const VNET_HDR_LEN = 10;
const OFFLOAD_BITS: Readonly<Record<TunOffload, number>> = { off: 0, gro: 1 };
const OFFLOAD_TSO = 2;
const OFFLOAD_USO = 4;

export interface TunStats {
  /** Packets and wake-ups on the read side: rxPackets / rxBatches is the mean batch size. */
  rxPackets: number;
  rxBatches: number;
  txPackets: number;
  /** Packets the kernel refused because its queue was full (EAGAIN/ENOBUFS). */
  txDropped: number;
  /** Packets the kernel rejected (e.g. EINVAL: not an IP packet), and writes after close(). */
  txRejected: number;
  /** Read mode 'adaptive': how often reading moved to the reader thread, and back to the loop. */
  readsToThread: number;
  readsToLoop: number;
}

export interface TunDeviceWithStats extends TunDevice {
  stats(): TunStats;
}

/** Opens (creates) a TUN device, IFF_TUN | IFF_NO_PI: raw IP packets, no header. */
export function openTun(opts: OpenTunOptions): TunDeviceWithStats {
  const problem = checkTunName(opts.name);
  if (problem !== null) {
    throw new TwillError('TWILL_ERR_KERNEL_TUN', `cannot create TUN device "${opts.name}": ${problem}`, { details: { name: opts.name } });
  }
  const nsPath = opts.netns === undefined ? null : tunNetnsPath(opts.netns);
  const addon = loadAddon();
  const offload = opts.offload ?? 'off';
  let opened: { handle: NativeHandle; name: string; offload: number };
  try {
    opened = addon.open(opts.name, nsPath, OFFLOAD_BITS[offload] | (opts.tso === true && offload === 'gro' ? OFFLOAD_TSO : 0));
  } catch (err) {
    if (!isTunSysError(err)) throw err;
    throw tunOpenError(err, { name: opts.name, netns: opts.netns });
  }
  const tun = new AddonTun(addon, opened.handle, opened.name, opts.onError, opts.readMode ?? DEFAULT_TUN_READ_MODE, offload);
  tun.tso = (opened.offload & OFFLOAD_TSO) !== 0;
  tun.uso = (opened.offload & OFFLOAD_USO) !== 0;
  return tun;
}

/** The addon's handle of an open device (for the udp pump, which reads and writes it itself); null for a fake or a closed one. */
export function tunHandleOf(dev: TunDevice): NativeHandle | null {
  return dev instanceof AddonTun ? dev.handle : null;
}

class AddonTun implements TunDeviceWithStats {
  /** Reads may be TCP super-packets (TUNSETOFFLOAD took TSO): only the udp pump reads such a device. */
  tso = false;
  /** Reads may also be UDP super-packets (TUN_F_USO4, Linux 6.2 on). */
  uso = false;
  #handle: NativeHandle | null;
  #started = false;
  readonly #counters = new Float64Array(2);
  #rx = { packets: 0, batches: 0 };
  #txPackets = 0;
  #txAfterClose = 0;
  /** Bytes in front of each packet read: the virtio header, which says nothing without TSO. */
  readonly #frameSkip: number;

  constructor(
    private readonly addon: TunAddon,
    handle: NativeHandle,
    readonly name: string,
    private readonly onError: ((err: TwillError) => void) | undefined,
    private readonly readMode: TunReadMode,
    readonly offload: TunOffload,
  ) {
    this.#handle = handle;
    this.#frameSkip = offload === 'off' ? 0 : VNET_HDR_LEN;
  }

  get handle(): NativeHandle | null {
    return this.#handle;
  }

  start(onPackets: (packets: readonly Buffer[]) => void): void {
    if (this.#handle === null || this.#started) {
      throw new TwillError('TWILL_ERR_KERNEL_TUN', `TUN device ${this.name} is ${this.#handle === null ? 'closed' : 'already reading'}`, { details: { name: this.name } });
    }
    this.#started = true;
    this.addon.start(this.#handle, (slab) => {
      try {
        this.#deliver(splitSlab(slab, this.#frameSkip), onPackets);
      } catch (err) {
        // Node-API would swallow it (DEP0168): make it a normal uncaught exception.
        process.nextTick(() => {
          throw err;
        });
      }
    }, READ_MODE_CODES[this.readMode]);
  }

  #deliver(batch: TunSlab, onPackets: (packets: readonly Buffer[]) => void): void {
    switch (batch.kind) {
      case 'packets':
        this.#rx.packets += batch.packets.length;
        this.#rx.batches += 1;
        return onPackets(batch.packets);
      case 'error': {
        const err = new TwillError('TWILL_ERR_KERNEL_TUN', `reading TUN device ${this.name} failed (${errnoName(batch.errno)}); the data path stopped`, {
          details: { name: this.name, errno: errnoName(batch.errno) },
        });
        if (!this.onError) throw err; // nobody to tell: fail loudly rather than go quiet
        return this.onError(err);
      }
    }
  }

  write(packets: readonly Buffer[], segmentSizes?: Uint32Array): number {
    if (this.#handle === null) {
      this.#txAfterClose += packets.length; // a datagram that raced stop(): dropped, not an error
      return 0;
    }
    const n = packets.length === 0 ? 0 : this.addon.write(this.#handle, packets, this.#counters, this.offload === 'off' ? undefined : segmentSizes);
    this.#txPackets += n;
    return n;
  }

  close(): void {
    if (this.#handle === null) return;
    const handle = this.#handle;
    this.#handle = null;
    this.addon.close(handle);
  }

  stats(): TunStats {
    const [dropped = 0, rejected = 0] = this.#counters;
    const [toThread, toLoop] = this.#handle === null ? [0, 0] : this.addon.readerSwitches(this.#handle);
    return { rxPackets: this.#rx.packets, rxBatches: this.#rx.batches, txPackets: this.#txPackets, txDropped: dropped, txRejected: rejected + this.#txAfterClose, readsToThread: toThread, readsToLoop: toLoop };
  }
}

/** The addon (loaded once by require's cache); the udp pump's functions live in it too. */
export function loadAddon(): TunAddon {
  try {
    return requireAddon(ADDON_PATH) as TunAddon;
  } catch (err) {
    throw new TwillError('TWILL_ERR_KERNEL_TUN', `the TUN addon (build/Release/twill_tun.node) is missing or broken: run "npm ci" or "npm run build:native"`, { cause: err });
  }
}

// ---- pure parts (unit-tested) ----

/** Why the kernel would refuse this interface name (dev_valid_name), or null if it is fine. */
export function checkTunName(name: string): string | null {
  if (name === '') return 'the name is empty';
  if (Buffer.byteLength(name) > TUN_NAME_MAX) return `names are at most ${TUN_NAME_MAX} bytes`;
  if (name === '.' || name === '..') return 'the name cannot be "." or ".."';
  if (/[/:\s]/.test(name)) return 'the name cannot contain "/", ":" or white space';
  return null;
}

/** A namespace name means /var/run/netns/NAME; an absolute path is used as it is. */
export function tunNetnsPath(netns: string): string {
  if (netns.startsWith('/')) return netns;
  if (netns === '' || netns === '.' || netns === '..' || netns.includes('/')) {
    throw new TwillError('TWILL_ERR_KERNEL_TUN', `"${netns}" is not a network namespace name`, { details: { netns } });
  }
  return netnsPath(netns);
}

export type TunSlab = { kind: 'packets'; packets: Buffer[] } | { kind: 'error'; errno: number };

/**
 * Cuts a slab from the addon into per-packet Buffers (views, no copy). Layout, in uint32
 * words: count, errno, byte offset of the data, then the packet lengths; packets follow
 * back to back. count 0 with a non-zero errno means the reader stopped on that error.
 * `skip` bytes in front of each packet (its virtio header) are left out.
 */
export function splitSlab(slab: ArrayBuffer, skip = 0): TunSlab {
  const words = new Uint32Array(slab, 0, 3);
  const [count = 0, errno = 0, dataOffset = 0] = words;
  if (count === 0) return { kind: 'error', errno: errno || 5 /* EIO */ };
  const lengths = new Uint32Array(slab, 12, count);
  const packets: Buffer[] = new Array<Buffer>(count);
  let offset = dataOffset;
  for (let i = 0; i < count; i++) {
    const len = lengths[i] ?? 0;
    packets[i] = Buffer.from(slab, offset + Math.min(skip, len), Math.max(0, len - skip));
    offset += len;
  }
  return { kind: 'packets', packets };
}

export function isTunSysError(err: unknown): err is TunSysError {
  return err instanceof Error && typeof (err as Partial<TunSysError>).errno === 'number' && typeof (err as Partial<TunSysError>).syscall === 'string';
}

/** Linux errnos a TUN device can report that libuv has no name for. */
const LINUX_ONLY_ERRNOS: Readonly<Record<number, string>> = { 77: 'EBADFD' };

export function errnoName(errno: number): string {
  const known = LINUX_ONLY_ERRNOS[Math.abs(errno)];
  if (known !== undefined) return known;
  try {
    const name = getSystemErrorName(-Math.abs(errno));
    return name.startsWith('E') ? name : `errno ${errno}`;
  } catch {
    return `errno ${errno}`;
  }
}

/** Maps a failed open (which step, which errno) to an error that says what to do about it. */
export function tunOpenError(err: TunSysError, ctx: { name: string; netns?: string | undefined }): TwillError {
  const code = errnoName(err.errno);
  const where = ctx.netns === undefined ? '' : ` in network namespace ${ctx.netns}`;
  const fail = (twillCode: ErrorCode, why: string): TwillError =>
    new TwillError(twillCode, `cannot create TUN device "${ctx.name}"${where}: ${why}`, {
      cause: Object.assign(err, { code }),
      details: { name: ctx.name, netns: ctx.netns, syscall: err.syscall, errno: code },
    });
  const denied = code === 'EPERM' || code === 'EACCES';
  switch (err.syscall) {
    case 'open netns':
      if (code === 'ENOENT') return fail('TWILL_ERR_KERNEL_TUN', `the namespace does not exist (${tunNetnsPath(ctx.netns ?? '')})`);
      break;
    case 'setns':
      if (denied) return fail('TWILL_ERR_KERNEL_TUN_PERMISSION', 'entering the namespace was refused (EPERM): run twill as root (CAP_SYS_ADMIN is needed to enter a namespace)');
      break;
    case 'open /dev/net/tun':
      if (code === 'ENOENT' || code === 'ENODEV' || code === 'ENXIO') {
        return fail('TWILL_ERR_KERNEL_TUN_MISSING', `/dev/net/tun is not available (${code}): load the tun module ("modprobe tun"); in a container, pass the device (e.g. --device /dev/net/tun)`);
      }
      if (denied) return fail('TWILL_ERR_KERNEL_TUN_PERMISSION', `opening /dev/net/tun was refused (${code}): run twill as root or with CAP_NET_ADMIN (e.g. --cap-add NET_ADMIN)`);
      break;
    case 'ioctl TUNSETIFF':
      if (denied) return fail('TWILL_ERR_KERNEL_TUN_PERMISSION', `creating the device was refused (${code}): run twill with CAP_NET_ADMIN (e.g. --cap-add NET_ADMIN)`);
      if (code === 'EBUSY') return fail('TWILL_ERR_KERNEL_TUN', 'the name is in use by another TUN device that is still open (is another agent running?)');
      if (code === 'EINVAL') return fail('TWILL_ERR_KERNEL_TUN', 'the name is invalid or taken by an interface that is not a TUN device');
      break;
    case 'name':
      return fail('TWILL_ERR_KERNEL_TUN', `names are at most ${TUN_NAME_MAX} bytes`);
  }
  return fail('TWILL_ERR_KERNEL_TUN', `${err.syscall} failed (${code})`);
}
