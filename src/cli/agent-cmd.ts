import { Option, type Command } from 'commander';
import { checkCniNetworkName } from '../agent/cni-conflist.js';
import { startServedAgent } from '../agent/serve.js';
import { checkTtl, parseBool, parseDurationSeconds, type AgentOptions } from '../agent/options.js';
import { BACKENDS, parseBackendFlags, type BackendTable } from '../backend/index.js';
import { createLogger } from '../log.js';
import { addStatusOptions, statusOptions, type StatusFlags } from './status-flags.js';
import { addTrafficRuleOptions, runCleanup, type TrafficRuleFlags } from './traffic-flags.js';
import { addEtcdOptions, parseEtcdFlags, type EtcdFlags } from './etcd-flags.js';
import { readNetConfigFile } from './net-config-file.js';

interface AgentFlags extends TrafficRuleFlags, EtcdFlags {
  iface?: string;
  publicIp?: string;
  subnetFile: string;
  subnetLeaseTtl: string;
  netConfigFile?: string;
  cniConfFile: string;
  cniNetworkName: string;
  logLevel: string;
}

type AllAgentFlags = AgentFlags & StatusFlags;

function toOptions(flags: AllAgentFlags): AgentOptions {
  const etcd = parseEtcdFlags(flags);
  return Object.freeze({
    etcdEndpoints: etcd.endpoints,
    etcdPrefix: etcd.prefix,
    etcdAccess: etcd.access,
    iface: flags.iface ?? null,
    publicIp: flags.publicIp ?? null,
    subnetFile: flags.subnetFile,
    subnetLeaseTtlSeconds: checkTtl(parseDurationSeconds('--subnet-lease-ttl', flags.subnetLeaseTtl)),
    backendFlags: parseBackendFlags(backendFlagValues(flags)),
    ...statusOptions(flags),
    ipMasq: parseBool('--ip-masq', flags.ipMasq),
    forwardRules: parseBool('--forward-rules', flags.forwardRules),
    netConfig: flags.netConfigFile ? readNetConfigFile(flags.netConfigFile) : null,
    cniConfFile: flags.cniConfFile === '' ? null : flags.cniConfFile,
    cniNetworkName: checkCniNetworkName(flags.cniNetworkName),
  });
}

/** Each backend's own flags (--tun-name for udp, …), from the backend table. */
export function addBackendOptions(cmd: Command, table: BackendTable = BACKENDS): Command {
  for (const factory of Object.values(table)) {
    for (const f of factory.flags) {
      const option = new Option(`--${f.name} <value>`, `${f.description} (${factory.type})`).env(f.env).default(f.default);
      cmd.addOption(f.choices ? option.choices(f.choices) : option);
    }
  }
  return cmd;
}

/** Commander keys options by camel-cased name; the backends know their flags by name. */
export function backendFlagValues(flags: object, table: BackendTable = BACKENDS): Record<string, string | undefined> {
  const values = flags as Record<string, string | undefined>;
  const names = Object.values(table).flatMap((f) => f.flags.map((x) => x.name));
  return Object.fromEntries(names.map((name) => [name, values[name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())]]));
}

/** How long a stop may take before the process exits anyway. */
const STOP_DEADLINE_MS = 5_000;

/** Whether `work` settles within `ms` (it keeps running either way). */
async function within(ms: number, work: Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([work.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs the agent until SIGTERM or SIGINT, then stops it cleanly (routes and lease stay). */
async function runAgent(flags: AllAgentFlags): Promise<void> {
  const options = toOptions(flags);
  const logger = createLogger({ level: flags.logLevel });
  if (flags.cleanup) return runCleanup(options, logger);
  const { agent, api } = await startServedAgent(options, logger);
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const started = agent.start();
  try {
    // A start that fails for good (no such interface, say) ends the process; a signal ends it too.
    const signal = await Promise.race([stopped, started.then(() => stopped)]);
    logger.info({ signal }, 'stopping');
  } finally {
    // Kubernetes waits 30 s before SIGKILL; the backend's pass in flight is what stop waits for.
    const inTime = await within(STOP_DEADLINE_MS, agent.stop().then(() => started.catch(() => undefined)));
    if (!inTime) logger.warn({ deadlineMs: STOP_DEADLINE_MS }, 'stop took too long; exiting anyway (the next start reconciles)');
    await api.close();
    logger.info('stopped');
  }
}

export function registerAgentCommand(program: Command): void {
  const cmd = program.command('agent').description('run the overlay agent on this node (lease a subnet, program the backend)');
  addStatusOptions(cmd);
  addEtcdOptions(cmd)
    .addOption(new Option('--iface <name|address>', 'underlay interface (default: the interface of the default route)').env('TWILL_IFACE'))
    .addOption(new Option('--public-ip <address>', "IP peers reach this node at (default: the interface's first IPv4)").env('TWILL_PUBLIC_IP'))
    .addOption(new Option('--subnet-file <path>', 'where to write subnet.env').env('TWILL_SUBNET_FILE').default('/run/flannel/subnet.env'))
    .addOption(new Option('--subnet-lease-ttl <duration>', 'TTL of the etcd lease on the subnet').env('TWILL_SUBNET_LEASE_TTL').default('24h'))
    .addOption(new Option('--net-config-file <path>', "create the network config in etcd from this file when there is none (etcd's wins when both exist)").env('TWILL_NET_CONFIG_FILE'))
    .addOption(new Option('--cni-conf-file <path>', "write this node's CNI conflist here once the lease is held (bridge, host-local, portmap); empty = off").env('TWILL_CNI_CONF_FILE').default(''))
    .addOption(new Option('--cni-network-name <name>', "the conflist's network name").env('TWILL_CNI_NETWORK_NAME').default('cbr0'))
    .addOption(new Option('--log-level <level>', 'pino log level').env('TWILL_LOG_LEVEL').default('info'));
  addBackendOptions(cmd);
  addTrafficRuleOptions(cmd)
    .action((flags: AllAgentFlags) => runAgent(flags));
}
