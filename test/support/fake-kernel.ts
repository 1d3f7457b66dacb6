import type { BatchResult, FdbEntry, Kernel, LinkInfo, Neighbour, RouteChange, RouteLookup, VxlanLink } from '../../src/kernel/index.js';

export interface FakeKernel {
  readonly kernel: Kernel;
  /** Every call, as "area.method args", in call order; also appended to the shared `order` if given. */
  readonly calls: string[];
  /** Route changes applied, one array per batch. */
  readonly routeBatches: RouteChange[][];
  /** VXLAN links by name, and the permanent neighbours and FDB entries by device (kept as applied). */
  readonly vxlanLinks: Map<string, VxlanLink>;
  readonly neighbours: Map<string, Neighbour[]>;
  readonly fdb: Map<string, FdbEntry[]>;
}

/**
 * A Kernel that runs nothing: the external interface is a fixed one, ip_forward and nft/iptables
 * calls are recorded, there are no rules or routes until applied. For agent tests without root.
 */
export function fakeKernel(opts: { iface?: LinkInfo; order?: string[] } = {}): FakeKernel {
  const calls: string[] = [];
  const routeBatches: RouteChange[][] = [];
  const iface = opts.iface ?? { name: 'eth0', address: '198.18.0.1', mtu: 1500 };
  let forwarding = false;
  const record = (call: string) => {
    calls.push(call);
    opts.order?.push(call);
  };
  const lookup = (): RouteLookup => ({ dev: iface.name });
  const vxlanLinks = new Map<string, VxlanLink>();
  const neighbours = new Map<string, Neighbour[]>();
  const fdb = new Map<string, FdbEntry[]>();
  const kernel: Kernel = {
    netns: undefined,
    links: {
      resolveExternal: async (name) => (record(`links.resolveExternal ${name ?? '(default route)'}`), iface),
      removeIfKind: async (name, kind) => (record(`links.removeIfKind ${name} ${kind}`), false),
    },
    neigh: {
      listPermanent: async (dev) => (record(`neigh.list ${dev}`), [...(neighbours.get(dev) ?? [])]),
      lookup: async (ip) => {
        record(`neigh.lookup ${ip}`);
        const n = [...neighbours.values()].flat().find((x) => x.ip === ip);
        return n ? { ip, state: 'PERMANENT', lladdr: n.mac } : null;
      },
      apply: async (changes) => {
        record(`neigh.apply ${changes.length}`);
        for (const c of changes) {
          const rest = (neighbours.get(c.dev) ?? []).filter((n) => n.ip !== c.ip);
          neighbours.set(c.dev, c.op === 'replace' ? [...rest, { ip: c.ip, mac: c.mac }] : rest);
        }
        return [];
      },
    },
    fdb: {
      listPermanent: async (dev) => (record(`fdb.list ${dev}`), [...(fdb.get(dev) ?? [])]),
      apply: async (changes) => {
        record(`fdb.apply ${changes.length}`);
        for (const c of changes) {
          const rest = (fdb.get(c.dev) ?? []).filter((e) => e.mac !== c.mac || (c.op === 'delete' && e.dst !== c.dst));
          fdb.set(c.dev, c.op === 'replace' ? [...rest, { mac: c.mac, dst: c.dst }] : rest);
        }
        return [];
      },
    },
    vxlan: {
      show: async (name) => (record(`vxlan.show ${name}`), vxlanLinks.get(name) ?? null),
      list: async () => (record('vxlan.list'), [...vxlanLinks.values()]),
      create: async (spec) => {
        record(`vxlan.create ${spec.name}`);
        const { name, vni, local, dev, gbp, learning, mac, mtu } = spec;
        vxlanLinks.set(name, { name, kind: 'vxlan', vni, local, dev, port: spec.port || 8472, gbp, learning, mac, mtu, up: false, ipv4: [] });
      },
      remove: async (name) => {
        record(`vxlan.remove ${name}`);
        vxlanLinks.delete(name);
        neighbours.delete(name);
        fdb.delete(name);
      },
      configure: async (link, spec) => {
        record(`vxlan.configure ${spec.name}`);
        const cur = vxlanLinks.get(spec.name) ?? link;
        vxlanLinks.set(spec.name, { ...cur, mac: spec.mac, mtu: spec.mtu, up: true, ipv4: [spec.address] });
      },
    },
    sysctl: {
      enableIpForward: async () => (record('sysctl.enableIpForward'), void (forwarding = true)),
      ipForwardEnabled: async () => forwarding,
    },
    routes: {
      list: async (proto) => (record(`routes.list ${proto}`), []),
      listMain: async () => (record('routes.listMain'), []),
      apply: async (changes): Promise<BatchResult> => (record(`routes.apply ${changes.length}`), routeBatches.push([...changes]), { failed: [] }),
      get: async () => lookup(),
      getMany: async (ips) => new Map(ips.map((ip) => [ip, lookup()])),
    },
    nft: {
      tables: async (family) => (record(`nft.tables ${family}`), []),
      listTable: async (family, name) => (record(`nft.listTable ${family} ${name}`), null),
      apply: async () => record('nft.apply'),
    },
    iptables: {
      listChain: async (table, chain) => (record(`iptables.listChain ${table} ${chain}`), `-P ${chain} ACCEPT\n`),
      insert: async (table, chain) => record(`iptables.insert ${table} ${chain}`),
      delete: async (table, chain) => record(`iptables.delete ${table} ${chain}`),
      usesNftables: async () => true,
    },
  };
  return { kernel, calls, routeBatches, vxlanLinks, neighbours, fdb };
}
