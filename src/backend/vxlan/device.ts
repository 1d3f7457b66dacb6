import { TwillError } from '../../errors.js';
import { vxlanIncompat, type Kernel, type VxlanLink, type VxlanSpec } from '../../kernel/index.js';
import { formatIp } from '../../lib/ipv4.js';
import type { BackendContext } from '../backend.js';
import type { VxlanOptions } from './options.js';
import { deviceName, VXLAN_OVERHEAD, vtepMac } from './vtep.js';

/** The device flannel would make for this node: `flannel.<VNI>`, local PublicIP, MTU − 50, `<subnet IP>/32`. */
export function deviceSpec(ctx: Pick<BackendContext<VxlanOptions, unknown>, 'options' | 'iface' | 'ownLease'>): VxlanSpec {
  const { options, iface, ownLease } = ctx;
  return {
    name: deviceName(options.vni),
    vni: options.vni,
    local: ownLease.attrs.publicIP,
    dev: iface.name,
    port: options.port,
    learning: options.learning,
    gbp: options.gbp,
    mac: vtepMac(ownLease.attrs.publicIP, options.vni),
    mtu: (options.mtu ?? iface.mtu) - VXLAN_OVERHEAD,
    address: `${formatIp(ownLease.subnet.addr)}/32`,
  };
}

/** What ensureDevice found and did. */
export type DeviceAction =
  | { readonly action: 'kept' }
  | { readonly action: 'configured' }
  | { readonly action: 'created' }
  | { readonly action: 'recreated'; readonly reason: string };

/**
 * Makes `spec.name` the device `spec` describes: an existing compatible one is kept (its MAC,
 * MTU, address and state set where they differ); an incompatible one (other kind, VNI, local,
 * underlay device, port, group, GBP or learning) is deleted and created anew, as flannel does.
 */
export async function ensureDevice(kernel: Kernel, spec: VxlanSpec): Promise<DeviceAction> {
  const link = await kernel.vxlan.show(spec.name);
  const incompat = link && vxlanIncompat(link, spec);
  if (link && incompat === null) {
    if (isConfigured(link, spec)) return { action: 'kept' };
    await deviceStep(spec, 'configure', () => kernel.vxlan.configure(link, spec));
    return { action: 'configured' };
  }
  if (link) await deviceStep(spec, 'delete the incompatible', () => kernel.vxlan.remove(spec.name));
  await deviceStep(spec, 'create', () => kernel.vxlan.create(spec));
  // Created with its MAC and MTU; it still needs its address and to be up.
  const fresh: VxlanLink = { name: spec.name, kind: 'vxlan', gbp: spec.gbp, mac: spec.mac, mtu: spec.mtu, up: false, ipv4: [] };
  await deviceStep(spec, 'configure', () => kernel.vxlan.configure(fresh, spec));
  return incompat ? { action: 'recreated', reason: incompat } : { action: 'created' };
}

/** A device step that fails is TWILL_ERR_VXLAN_DEVICE, with what ip said as its cause. */
async function deviceStep(spec: VxlanSpec, what: string, step: () => Promise<void>): Promise<void> {
  try {
    await step();
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new TwillError('TWILL_ERR_VXLAN_DEVICE', `cannot ${what} vxlan device ${spec.name}: ${why}`, { cause: err, details: { name: spec.name, vni: spec.vni, dev: spec.dev } });
  }
}

function isConfigured(link: VxlanLink, spec: VxlanSpec): boolean {
  return link.mac === spec.mac && link.mtu === spec.mtu && link.up && link.ipv4.length === 1 && link.ipv4[0] === spec.address;
}
