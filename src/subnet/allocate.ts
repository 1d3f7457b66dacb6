import { contains, formatCidr, mask, sameNet, type Ipv4Net } from '../lib/ipv4.js';
import type { Lease, NetworkConfig } from './types.js';

/** How many free subnets the random pick chooses among (flannel's number). */
const PICK_AMONG = 100;

export type Allocation =
  | { readonly kind: 'existing'; readonly lease: Lease }
  | { readonly kind: 'new'; readonly subnet: Ipv4Net }
  | { readonly kind: 'full' };

export interface AllocationInput {
  readonly config: NetworkConfig;
  readonly leases: readonly Lease[];
  readonly publicIP: string;
  /** The subnet this node had before (subnet file, or the lease just lost). */
  readonly preferred: Ipv4Net | null;
  /** Returns an integer in [0, n). */
  readonly random: (n: number) => number;
}

/** Is this subnet one the config lets us lease? */
export function fitsConfig(config: NetworkConfig, subnet: Ipv4Net): boolean {
  return (
    subnet.len === config.subnetLen &&
    contains(config.network, subnet.addr) &&
    subnet.addr >= config.subnetMin &&
    subnet.addr <= config.subnetMax
  );
}

/** flannel's order: own PublicIP's lease, then the preferred subnet if free, then random among the first free. */
export function chooseSubnet(input: AllocationInput): Allocation {
  const { config, leases, publicIP, preferred } = input;
  const own = leases.find((l) => l.attrs.publicIP === publicIP && fitsConfig(config, l.subnet));
  if (own) return { kind: 'existing', lease: own };
  const taken = new Set(leases.map((l) => l.subnet.addr & mask(config.subnetLen)));
  if (preferred && fitsConfig(config, preferred) && !leases.some((l) => sameNet(l.subnet, preferred))) {
    return { kind: 'new', subnet: preferred };
  }
  const free = firstFree(config, taken, PICK_AMONG);
  if (free.length === 0) return { kind: 'full' };
  return { kind: 'new', subnet: { addr: free[input.random(free.length)]!, len: config.subnetLen } };
}

function firstFree(config: NetworkConfig, taken: ReadonlySet<number>, limit: number): number[] {
  const step = 2 ** (32 - config.subnetLen);
  const out: number[] = [];
  for (let addr = config.subnetMin; addr <= config.subnetMax && out.length < limit; addr += step) {
    if (!taken.has(addr >>> 0)) out.push(addr >>> 0);
  }
  return out;
}

/** For the "network full" error: how many subnets the config allows in all. */
export function subnetCapacity(config: NetworkConfig): string {
  const count = (config.subnetMax - config.subnetMin) / 2 ** (32 - config.subnetLen) + 1;
  return `${formatCidr(config.network)} holds ${count} /${config.subnetLen} subnets`;
}
