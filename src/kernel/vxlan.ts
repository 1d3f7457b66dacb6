import { z } from 'zod';
import { TwillError } from '../errors.js';
import { parseIpJson, type ExecFn } from './routes.js';
import { nsOpt } from './syntax.js';

/** The kernel's VXLAN port when none is given (Linux's historic default, flannel's too). */
export const KERNEL_VXLAN_PORT = 8472;

/** The VXLAN device a backend wants. */
export interface VxlanSpec {
  readonly name: string;
  readonly vni: number;
  /** The underlay address the tunnel's packets leave from. */
  readonly local: string;
  /** The underlay device. */
  readonly dev: string;
  /** UDP port; 0 means the kernel's default (8472). */
  readonly port: number;
  readonly learning: boolean;
  readonly gbp: boolean;
  readonly mac: string;
  readonly mtu: number;
  /** The one IPv4 address the device carries, as "a.b.c.d/32". */
  readonly address: string;
}

/** A link as `ip -d -json addr show` reads it: kind, VXLAN attributes (when it is one), MAC, MTU, IPv4 addresses. */
export interface VxlanLink {
  readonly name: string;
  readonly kind: string | null;
  readonly vni?: number;
  readonly local?: string;
  readonly dev?: string;
  readonly port?: number;
  readonly learning?: boolean;
  readonly gbp: boolean;
  /** A multicast group (flannel never sets one). */
  readonly group?: string;
  readonly mac: string;
  readonly mtu: number;
  readonly up: boolean;
  /** "a.b.c.d/len" */
  readonly ipv4: readonly string[];
}

export interface VxlanOps {
  /** The link by that name, or null when there is none. */
  show(name: string): Promise<VxlanLink | null>;
  /** Every VXLAN link of the namespace. */
  list(): Promise<VxlanLink[]>;
  /** `ip link add NAME address MAC mtu M type vxlan id VNI local L dev D dstport P [nolearning] [gbp]`. */
  create(spec: VxlanSpec): Promise<void>;
  remove(name: string): Promise<void>;
  /** Sets what differs (MAC, MTU, the address, up) in one `ip -batch`; nothing when nothing does. */
  configure(link: VxlanLink, spec: VxlanSpec): Promise<void>;
}

const linkSchema = z.array(
  z.object({
    ifname: z.string(),
    mtu: z.number(),
    address: z.string().optional(),
    flags: z.array(z.string()).default([]),
    linkinfo: z
      .object({
        info_kind: z.string().optional(),
        info_data: z.object({ id: z.number().optional(), local: z.string().optional(), group: z.string().optional(), link: z.string().optional(), port: z.number().optional(), learning: z.boolean().optional(), gbp: z.boolean().optional() }).loose().optional(),
      })
      .optional(),
    addr_info: z.array(z.object({ family: z.string().optional(), local: z.string().optional(), prefixlen: z.number().optional() })).default([]),
  }),
);

/** Pure: `ip -d -json addr show ...` → links with their VXLAN attributes. */
export function parseVxlanLinks(json: string): VxlanLink[] {
  return parseIpJson(json, linkSchema, 'ip addr show').map((l) => {
    const d = l.linkinfo?.info_data;
    return {
      name: l.ifname,
      kind: l.linkinfo?.info_kind ?? null,
      ...(d?.id === undefined ? {} : { vni: d.id }),
      ...(d?.local === undefined ? {} : { local: d.local }),
      ...(d?.link === undefined ? {} : { dev: d.link }),
      ...(d?.port === undefined ? {} : { port: d.port }),
      ...(d?.learning === undefined ? {} : { learning: d.learning }),
      ...(d?.group === undefined ? {} : { group: d.group }),
      gbp: d?.gbp === true,
      mac: (l.address ?? '').toLowerCase(),
      mtu: l.mtu,
      up: l.flags.includes('UP'),
      ipv4: l.addr_info.flatMap((a) => (a.family === 'inet' && a.local !== undefined ? [`${a.local}/${a.prefixlen ?? 32}`] : [])),
    };
  });
}

/** Pure: why an existing link cannot serve as `spec`'s device (it must be recreated), or null. */
export function vxlanIncompat(link: VxlanLink, spec: VxlanSpec): string | null {
  const port = spec.port === 0 ? KERNEL_VXLAN_PORT : spec.port;
  if (link.kind !== 'vxlan') return `kind ${link.kind ?? 'unknown'}, not vxlan`;
  if (link.vni !== spec.vni) return `VNI ${link.vni ?? '-'}, not ${spec.vni}`;
  if (link.local !== spec.local) return `local ${link.local ?? '-'}, not ${spec.local}`;
  if (link.dev !== spec.dev) return `dev ${link.dev ?? '-'}, not ${spec.dev}`;
  if (link.port !== port) return `port ${link.port ?? '-'}, not ${port}`;
  if (link.group !== undefined) return `group ${link.group}`;
  if (link.gbp !== spec.gbp) return `gbp ${link.gbp}, not ${spec.gbp}`;
  if (link.learning !== spec.learning) return `learning ${link.learning ?? '-'}, not ${spec.learning}`;
  return null;
}

/** Pure: the arguments of `ip` that create the device. */
export function vxlanAddArgs(spec: VxlanSpec): string[] {
  const port = spec.port === 0 ? KERNEL_VXLAN_PORT : spec.port;
  return [
    'link', 'add', spec.name, 'address', spec.mac, 'mtu', String(spec.mtu),
    'type', 'vxlan', 'id', String(spec.vni), 'local', spec.local, 'dev', spec.dev, 'dstport', String(port),
    ...(spec.learning ? [] : ['nolearning']), ...(spec.gbp ? ['gbp'] : []),
  ];
}

/** Pure: the `ip -batch` lines that bring a compatible link to `spec` (other IPv4 addresses go); [] when it is there. */
export function vxlanConfigureLines(link: VxlanLink, spec: VxlanSpec): string[] {
  const lines: string[] = [];
  if (link.mac !== spec.mac) lines.push(`link set dev ${spec.name} address ${spec.mac}`);
  if (link.mtu !== spec.mtu) lines.push(`link set dev ${spec.name} mtu ${spec.mtu}`);
  for (const a of link.ipv4) if (a !== spec.address) lines.push(`addr del ${a} dev ${spec.name}`);
  if (!link.ipv4.includes(spec.address)) lines.push(`addr replace ${spec.address} dev ${spec.name}`);
  if (!link.up) lines.push(`link set dev ${spec.name} up`);
  return lines;
}

export function createVxlanOps(run: ExecFn, netns?: string): VxlanOps {
  const ns = nsOpt(netns);
  return {
    async show(name) {
      const res = await run('ip', ['-d', '-json', 'addr', 'show', 'dev', name], { ...ns, allowFailure: true });
      return res.code === 0 ? (parseVxlanLinks(res.stdout)[0] ?? null) : null;
    },
    async list() {
      const res = await run('ip', ['-d', '-json', 'addr', 'show', 'type', 'vxlan'], ns);
      return parseVxlanLinks(res.stdout);
    },
    async create(spec) {
      await run('ip', vxlanAddArgs(spec), ns);
    },
    async remove(name) {
      await run('ip', ['link', 'del', 'dev', name], ns);
    },
    async configure(link, spec) {
      const lines = vxlanConfigureLines(link, spec);
      if (lines.length === 0) return;
      const res = await run('ip', ['-batch', '-'], { ...ns, input: `${lines.join('\n')}\n`, allowFailure: true });
      if (res.code !== 0) throw new TwillError('TWILL_ERR_KERNEL_COMMAND', `configuring ${spec.name} failed: ${res.stderr.trim()}`, { details: { lines, stderr: res.stderr } });
    },
  };
}
