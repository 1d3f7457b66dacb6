import { z } from 'zod';
import { TwillError } from '../errors.js';
import { parseIp } from '../lib/ipv4.js';
import { parseIpJson, parseRouteList, type ExecFn } from './routes.js';

/** The underlay interface: its name, the IPv4 address peers reach us on, and its MTU. */
export interface LinkInfo {
  readonly name: string;
  readonly address: string;
  readonly mtu: number;
}

export interface LinkOps {
  /**
   * Finds the external interface. `iface` is a name ("eth0"), an IPv4 address (the link that
   * carries it; that address is returned), or undefined: the interface of the IPv4 default route.
   * The caller overrides `address` itself when an explicit public IP is configured.
   */
  resolveExternal(iface?: string): Promise<LinkInfo>;
  /** Deletes a link if it exists and is of this kind ("tun", ...); false when there was none. */
  removeIfKind(name: string, kind: string): Promise<boolean>;
}

const addrSchema = z.array(
  z.object({
    ifname: z.string(),
    mtu: z.number(),
    addr_info: z.array(z.object({ family: z.string().optional(), local: z.string().optional(), scope: z.string().optional() })).default([]),
  }),
);

type LinkAddrs = { name: string; mtu: number; ipv4: { local: string; scope: string }[] };

/** Parses `ip -json addr show ...` into links with their IPv4 addresses. */
export function parseAddrShow(json: string): LinkAddrs[] {
  return parseIpJson(json, addrSchema, 'ip addr show').map((l) => ({
    name: l.ifname,
    mtu: l.mtu,
    ipv4: l.addr_info.flatMap((a) => (a.family === 'inet' && a.local ? [{ local: a.local, scope: a.scope ?? 'global' }] : [])),
  }));
}

/** The address peers should use: the first global one, else the first that is not host-scoped. */
export function primaryIpv4(link: LinkAddrs): string | null {
  const usable = link.ipv4.filter((a) => a.scope !== 'host');
  return (usable.find((a) => a.scope === 'global') ?? usable[0])?.local ?? null;
}

/** The device of the first IPv4 default route in `ip -json route show default` output. */
export function defaultRouteDev(json: string): string | null {
  return parseRouteList(json).find((r) => r.dev !== undefined)?.dev ?? null;
}

const kindSchema = z.array(z.object({ linkinfo: z.object({ info_kind: z.string().optional() }).optional() }));

/** The kind of the first link in `ip -json -details link show` output ("tun", "veth", ...). */
export function linkKind(json: string): string | null {
  return parseIpJson(json, kindSchema, 'ip link show')[0]?.linkinfo?.info_kind ?? null;
}

function ifaceError(message: string, iface: string | undefined, cause?: unknown): TwillError {
  return new TwillError('TWILL_ERR_KERNEL_IFACE', message, { cause, details: { iface: iface ?? null } });
}

export function createLinkOps(run: ExecFn, netns?: string): LinkOps {
  const ns = netns === undefined ? {} : { netns };

  async function byName(name: string): Promise<LinkInfo> {
    const res = await run('ip', ['-json', 'addr', 'show', 'dev', name], { ...ns, allowFailure: true });
    const link = res.code === 0 ? parseAddrShow(res.stdout)[0] : undefined;
    if (!link) throw ifaceError(`interface ${name} does not exist`, name, res.stderr.trim());
    const address = primaryIpv4(link);
    if (address === null) throw ifaceError(`interface ${name} has no IPv4 address`, name);
    return { name: link.name, address, mtu: link.mtu };
  }

  async function byAddress(ip: string): Promise<LinkInfo> {
    const res = await run('ip', ['-json', 'addr', 'show'], ns);
    const link = parseAddrShow(res.stdout).find((l) => l.ipv4.some((a) => a.local === ip));
    if (!link) throw ifaceError(`no interface has the address ${ip}`, ip);
    return { name: link.name, address: ip, mtu: link.mtu };
  }

  async function byDefaultRoute(): Promise<LinkInfo> {
    const res = await run('ip', ['-json', '-4', 'route', 'show', 'default'], ns);
    const dev = defaultRouteDev(res.stdout);
    if (dev === null) throw ifaceError('no IPv4 default route: name the interface with --iface', undefined);
    return byName(dev);
  }

  return {
    resolveExternal(iface) {
      if (iface === undefined || iface === '') return byDefaultRoute();
      return parseIp(iface) === null ? byName(iface) : byAddress(iface);
    },
    async removeIfKind(name, kind) {
      const show = await run('ip', ['-json', '-details', 'link', 'show', 'dev', name], { ...ns, allowFailure: true });
      if (show.code !== 0 || linkKind(show.stdout) !== kind) return false;
      await run('ip', ['link', 'del', 'dev', name], ns);
      return true;
    },
  };
}
