/**
 * Configures the udp backend's TUN device the way flannel configures flannel0: a /32 address
 * (so that no broadcast routes appear), the MTU and transmit queue length, up, and one route
 * for the whole overlay network through the device, marked with twill's route proto.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { TwillError } from '../errors.js';
import { parseCidr, parseIp } from '../lib/ipv4.js';
import { exec } from './exec.js';
import { TWILL_ROUTE_PROTO, type ExecFn } from './routes.js';

export interface TunConfig {
  readonly dev: string;
  /** The device's own address (dotted quad); configured as /32. */
  readonly address: string;
  readonly mtu: number;
  /** Packets the kernel queues towards the data path before it drops (the link's txqueuelen). */
  readonly txqueuelen: number;
  /** The overlay network routed through the device, e.g. 10.244.0.0/16. */
  readonly network: string;
}

export interface TunConfigOptions {
  readonly netns?: string;
  /** Replaces exec() (unit tests). */
  readonly exec?: ExecFn;
  /** Replaces writing /proc/sys when no netns is set (unit tests). */
  readonly writeProc?: (path: string, data: string) => Promise<void>;
  /** Reads back a key whose write failed (tests inject it). */
  readonly readProc?: (path: string) => Promise<string>;
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

function invalid(c: TunConfig): string | null {
  if (!IFNAME.test(c.dev)) return `invalid device name "${c.dev}"`;
  if (parseIp(c.address) === null) return `invalid address "${c.address}"`;
  if (!Number.isInteger(c.mtu) || c.mtu < 68 || c.mtu > 65_535) return `invalid MTU ${c.mtu}`;
  if (!Number.isInteger(c.txqueuelen) || c.txqueuelen < 1 || c.txqueuelen > 100_000) return `invalid txqueuelen ${c.txqueuelen}`;
  return parseCidr(c.network) === null ? `invalid network "${c.network}"` : null;
}

/** The `ip -batch` lines; `replace` everywhere, so that a restart over an existing device succeeds. */
export function tunBatchLines(c: TunConfig): string[] {
  return [
    `address replace ${c.address}/32 dev ${c.dev}`,
    `link set dev ${c.dev} mtu ${c.mtu} txqueuelen ${c.txqueuelen} up`,
    `route replace ${c.network} dev ${c.dev} proto ${TWILL_ROUTE_PROTO}`,
  ];
}

/**
 * Sets two per-device sysctls, then runs the configuration as one `ip -batch -` (in the netns
 * if given). accept_local: the ICMP errors the data path writes into the TUN come from the
 * device's own address, and without it the kernel drops them as martians. disable_ipv6, before
 * the link is up: otherwise the kernel sends router solicitations and MLD reports into the TUN.
 */
export async function configureTun(c: TunConfig, opts: TunConfigOptions = {}): Promise<void> {
  const problem = invalid(c);
  if (problem) throw new TwillError('TWILL_ERR_KERNEL_COMMAND', `cannot configure TUN device: ${problem}`, { details: { ...c } });
  const run = opts.exec ?? exec;
  await setSysctls(c.dev, run, opts);
  const ns = opts.netns === undefined ? {} : { netns: opts.netns };
  await run('ip', ['-batch', '-'], { input: `${tunBatchLines(c).join('\n')}\n`, ...ns });
}

async function setSysctls(dev: string, run: ExecFn, opts: TunConfigOptions): Promise<void> {
  // Slash form: a device name may contain dots, which sysctl's dotted keys would split.
  const acceptLocal = `net/ipv4/conf/${dev}/accept_local`;
  const noIpv6 = `net/ipv6/conf/${dev}/disable_ipv6`;
  if (opts.netns !== undefined) {
    // -e: a kernel without IPv6 has no disable_ipv6 key, and that is fine.
    await run('sysctl', ['-q', '-e', '-w', `${acceptLocal}=1`, `${noIpv6}=1`], { netns: opts.netns });
    return;
  }
  const write = opts.writeProc ?? writeFile;
  const read = opts.readProc ?? ((path: string) => readFile(path, 'utf8'));
  await writeSysctlFile(write, read, `/proc/sys/${acceptLocal}`, false);
  await writeSysctlFile(write, read, `/proc/sys/${noIpv6}`, true);
}

async function writeSysctlFile(write: (path: string, data: string) => Promise<void>, read: (path: string) => Promise<string>, path: string, optional: boolean): Promise<void> {
  try {
    await write(path, '1\n');
  } catch (err) {
    if (optional && (err as NodeJS.ErrnoException).code === 'ENOENT') return;
    // A container has /proc/sys read-only; the device may already have it on, inherited from
    // net.ipv4.conf.default (a compose service's sysctls: set that).
    if ((await read(path).catch(() => '')).trim() === '1') return;
    throw new TwillError('TWILL_ERR_KERNEL_COMMAND', `cannot write ${path}`, { cause: err, details: { path } });
  }
}
