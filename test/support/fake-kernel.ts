import type { BatchResult, Kernel, LinkInfo, RouteChange, RouteLookup } from '../../src/kernel/index.js';

export interface FakeKernel {
  readonly kernel: Kernel;
  /** Every call, as "area.method args", in call order; also appended to the shared `order` if given. */
  readonly calls: string[];
  /** Route changes applied, one array per batch. */
  readonly routeBatches: RouteChange[][];
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
  const kernel: Kernel = {
    netns: undefined,
    links: {
      resolveExternal: async (name) => (record(`links.resolveExternal ${name ?? '(default route)'}`), iface),
      removeIfKind: async (name, kind) => (record(`links.removeIfKind ${name} ${kind}`), false),
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
  return { kernel, calls, routeBatches };
}
