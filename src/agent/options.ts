import type { HostPort } from '../api/addr.js';
import { TwillError } from '../errors.js';
import type { EtcdAccess } from '../subnet/etcd-access.js';

/** Everything `twill agent` is told, parsed once and frozen. */
export interface AgentOptions {
  readonly etcdEndpoints: readonly string[];
  readonly etcdPrefix: string;
  /** TLS files and user auth for etcd (--etcd-cafile …, --etcd-password); absent = plain http. */
  readonly etcdAccess?: EtcdAccess;
  /** Interface name or address; null = the interface of the default route. */
  readonly iface: string | null;
  /** null = the interface's first IPv4 address. */
  readonly publicIp: string | null;
  readonly subnetFile: string;
  readonly subnetLeaseTtlSeconds: number;
  /** Each backend's own flags, parsed by its parseFlags, by backend type; a missing one gets its defaults. */
  readonly backendFlags?: Readonly<Record<string, unknown>>;
  /** Where the status API listens (--status-addr, default 127.0.0.1:8475). */
  readonly statusAddr: HostPort;
  /** The node's name in the status (--node-name, default the hostname). */
  readonly nodeName: string;
  /** Masquerade pod traffic leaving the cluster network (flannel's --ip-masq); FLANNEL_IPMASQ. */
  readonly ipMasq: boolean;
  /** ACCEPT rules for the pod network in iptables' FORWARD chain (on unless --forward-rules=false). */
  readonly forwardRules: boolean;
  /** --cni-conf-file: where to write this node's CNI conflist once the lease is held; null = not at all. */
  readonly cniConfFile?: string | null;
  /** --cni-network-name: the conflist's name (flannel's cbr0). */
  readonly cniNetworkName?: string;
  /** --net-config-file: the network config to create in etcd when there is none (checked already). */
  readonly netConfig?: NetConfigSeed | null;
  /** Only for tests: run kernel commands inside this namespace instead of our own. */
  readonly netns?: string;
}

/** A network config file, read and validated when the options were parsed. */
export interface NetConfigSeed {
  readonly path: string;
  readonly text: string;
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Parses Go-style durations as flannel takes them ("24h", "1h30m", "90s"); a bare number is seconds. */
export function parseDurationSeconds(flag: string, text: string): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  const parts = [...t.matchAll(/(\d+)([smhd])/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== t) {
    throw new TwillError('TWILL_ERR_OPTION_INVALID', `${flag}: "${text}" is not a duration like 24h, 30m or 90s`);
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * UNIT_SECONDS[p[2]!]!, 0);
}

export function checkTtl(seconds: number): number {
  if (seconds < 5) throw new TwillError('TWILL_ERR_OPTION_INVALID', `--subnet-lease-ttl: ${seconds}s is too short (at least 5s)`);
  return seconds;
}

/** A boolean flag's value as commander hands it over: true/false from the flag, text from TWILL_*. */
export function parseBool(flag: string, value: boolean | string): boolean {
  if (typeof value === 'boolean') return value;
  const t = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(t)) return true;
  if (['false', '0', 'no', 'off'].includes(t)) return false;
  throw new TwillError('TWILL_ERR_OPTION_INVALID', `${flag}: "${value}" is not true or false`);
}
