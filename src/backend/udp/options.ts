import { z } from 'zod';
import { TwillError } from '../../errors.js';
import type { TunOffload } from '../../kernel/tun-types.js';
import type { BackendFlag } from '../backend.js';
import type { UdpDatapath } from './data-plane.js';
import { oneOf, parseBackendOptions } from '../options.js';

/** flannel's udp port (Backend.Port). */
export const DEFAULT_UDP_PORT = 8285;

const SCHEMA = z.object({
  Port: z.int({ error: 'must be an integer from 1 to 65535' }).min(1, { error: 'must be an integer from 1 to 65535' }).max(65535, { error: 'must be an integer from 1 to 65535' }).default(DEFAULT_UDP_PORT),
  DirectRouting: z.boolean({ error: 'must be true or false' }).default(false),
});

/** The udp backend's `Backend.*`: the UDP port it listens on and sends to, and DirectRouting (twill's, as vxlan's). */
export interface UdpOptions {
  readonly port: number;
  /** Peers on our L2 segment get a kernel route via their PublicIP instead of the tunnel (absent: false). */
  readonly directRouting?: boolean;
}

export function parseUdpOptions(raw: Readonly<Record<string, unknown>>): UdpOptions {
  const o = parseBackendOptions(SCHEMA, raw);
  return Object.freeze({ port: o.Port, directRouting: o.DirectRouting });
}

/** The udp backend's own command-line options. */
export interface UdpFlags {
  /** Name of the TUN device (--tun-name, default twill0). */
  readonly tunName: string;
  /** TCP offload on that device (--tun-offload, default gro). */
  readonly tunOffload: TunOffload;
  /** What moves the packets (--udp-datapath, default native): the pump in C, or the Node.js reference. */
  readonly datapath: UdpDatapath;
}

const OFFLOADS: readonly TunOffload[] = ['gro', 'off'];
const DATAPATHS: readonly UdpDatapath[] = ['native', 'dgram'];

export const UDP_FLAGS: readonly BackendFlag[] = [
  { name: 'tun-name', description: 'tunnel device of the udp backend', env: 'TWILL_TUN_NAME', default: 'twill0' },
  {
    name: 'tun-offload',
    description: 'TCP offload on that device: gro merges inbound segments into super-packets; off writes every packet alone',
    env: 'TWILL_TUN_OFFLOAD',
    default: 'gro',
    choices: OFFLOADS,
  },
  {
    name: 'udp-datapath',
    description: 'what moves the udp backend\'s packets: native is the pump in C (many packets per system call, off the event loop); dgram is the Node.js reference',
    env: 'TWILL_UDP_DATAPATH',
    default: 'native',
    choices: DATAPATHS,
  },
];

export function parseUdpFlags(values: Readonly<Record<string, string>>): UdpFlags {
  return Object.freeze({
    tunName: checkTunName(values['tun-name'] ?? 'twill0'),
    tunOffload: oneOf('tun-offload', values['tun-offload'] ?? 'gro', OFFLOADS),
    datapath: oneOf('udp-datapath', values['udp-datapath'] ?? 'native', DATAPATHS),
  });
}

/** Linux interface names: 1 to 15 characters, no slash, colon or white space. */
export function checkTunName(name: string): string {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) throw new TwillError('TWILL_ERR_OPTION_INVALID', `--tun-name: "${name}" is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -)`);
  return name;
}
