import { Option, type Command } from 'commander';
import { startServedAgent } from '../agent/serve.js';
import { checkTtl, checkTunName, parseBool, parseDurationSeconds, type AgentOptions } from '../agent/options.js';
import type { TunOffload } from '../kernel/tun-types.js';
import { createLogger } from '../log.js';
import { addStatusOptions, statusOptions, type StatusFlags } from './status-flags.js';
import { addTrafficRuleOptions, runCleanup, type TrafficRuleFlags } from './traffic-flags.js';
import { addEtcdOptions, parseEtcdFlags, type EtcdFlags } from './etcd-flags.js';

interface AgentFlags extends TrafficRuleFlags, EtcdFlags {
  iface?: string;
  publicIp?: string;
  subnetFile: string;
  subnetLeaseTtl: string;
  tunName: string;
  tunOffload: TunOffload;
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
    tunName: checkTunName(flags.tunName),
    tunOffload: flags.tunOffload,
    ...statusOptions(flags),
    ipMasq: parseBool('--ip-masq', flags.ipMasq),
    forwardRules: parseBool('--forward-rules', flags.forwardRules),
  });
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
    await agent.stop();
    await started.catch(() => undefined);
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
    .addOption(new Option('--tun-name <name>', 'tunnel device of the udp backend').env('TWILL_TUN_NAME').default('twill0'))
    .addOption(new Option('--tun-offload <mode>', 'TCP offload on that device: gro merges inbound segments into super-packets; off writes every packet alone').env('TWILL_TUN_OFFLOAD').choices(['gro', 'off']).default('gro'))
    .addOption(new Option('--log-level <level>', 'pino log level').env('TWILL_LOG_LEVEL').default('info'));
  addTrafficRuleOptions(cmd)
    .action((flags: AllAgentFlags) => runAgent(flags));
}
