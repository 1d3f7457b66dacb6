import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../src/agent/agent.js';
import type { AgentOptions } from '../../src/agent/options.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import type { AgentObserver } from '../../src/status/observer.js';
import type { LeaseWatch, LeaseWatchHandlers } from '../../src/subnet/registry.js';
import { fakeKernel, type FakeKernel } from './fake-kernel.js';
import { memoryLogger } from './logger.js';
import { MemoryRegistry } from './memory-registry.js';
import { RECORDING_TYPE, recordingBackend, type BackendRecord, type RecordingOptions } from './recording-backend.js';

export const OWN_IP = '198.18.0.1';
export const NETWORK_CONFIG = `{"Network":"10.244.0.0/16","Backend":{"Type":"${RECORDING_TYPE}"}}`;

/** The memory registry, also noting in the shared order when a watch opens or closes and when it is closed. */
class RecordingRegistry extends MemoryRegistry {
  /** The handlers of the latest watch, to play etcd's side of the stream (a disconnect, an error). */
  watchHandlers: LeaseWatchHandlers | null = null;

  constructor(private readonly order: string[]) {
    super();
  }

  override watchLeases(fromRevision: string, handlers: LeaseWatchHandlers): LeaseWatch {
    this.order.push('registry.watch');
    this.watchHandlers = handlers;
    const w = super.watchLeases(fromRevision, handlers);
    return { close: async () => (this.order.push('watch.close'), w.close()) };
  }

  override close(): void {
    this.order.push('registry.close');
    super.close();
  }
}

export interface AgentHarnessOptions {
  /** The network config put before start; null = none (the agent waits for it). */
  readonly config?: string | null;
  /** Other nodes' leases before start: [subnet, PublicIP]. */
  readonly peers?: readonly (readonly [string, string])[];
  readonly backend?: RecordingOptions;
  /** Receives the agent's counters (default: none). */
  readonly observer?: AgentObserver;
  /** What --net-config-file would hand the agent (its text). */
  readonly netConfig?: string;
  /** Write the CNI conflist (--cni-conf-file) into the harness's temp dir. */
  readonly cniConf?: boolean;
}

export interface AgentHarness {
  readonly agent: Agent;
  readonly registry: MemoryRegistry;
  readonly kernel: FakeKernel;
  readonly backends: BackendRecord[];
  /** Kernel calls, backend start/stop, registry watch/close: one story, in order. */
  readonly order: string[];
  readonly logLines: () => Record<string, unknown>[];
  readonly subnetEnv: () => Promise<string>;
  /** The harness's temp dir (subnet.env in run/, the conflist in net.d/). */
  readonly dir: string;
  /** The latest lease watch's handlers (null before the agent watches). */
  readonly watchHandlers: () => LeaseWatchHandlers | null;
  dispose(): Promise<void>;
}

/** An agent in this process: memory registry, fake kernel, recording backend, subnet.env in a temp dir. */
export async function agentHarness(opts: AgentHarnessOptions = {}): Promise<AgentHarness> {
  const order: string[] = [];
  const registry = new RecordingRegistry(order);
  if (opts.config !== null) await registry.putConfig(opts.config ?? NETWORK_CONFIG);
  for (const [cidr, publicIP] of opts.peers ?? []) {
    await registry.createLease(parseCidr(cidr)!, { publicIP, publicIPv6: null, backendType: RECORDING_TYPE }, 60);
  }
  const kernel = fakeKernel({ order, iface: { name: 'eth0', address: OWN_IP, mtu: 1500 } });
  const backend = recordingBackend({ order, ...opts.backend });
  const dir = await mkdtemp(join(tmpdir(), 'twill-agent-'));
  const subnetFile = join(dir, 'run', 'subnet.env');
  const options: AgentOptions = {
    etcdEndpoints: ['memory://'],
    etcdPrefix: registry.prefix,
    iface: null,
    publicIp: null,
    subnetFile,
    subnetLeaseTtlSeconds: 60,
    statusAddr: { host: '127.0.0.1', port: 0 },
    nodeName: 'node-a',
    ipMasq: false,
    forwardRules: false,
    netConfig: opts.netConfig === undefined ? null : { path: '/etc/twill/net-conf.json', text: opts.netConfig },
    cniConfFile: opts.cniConf ? join(dir, 'net.d', '10-twill.conflist') : null,
  };
  const log = memoryLogger();
  const agent = new Agent(Object.freeze(options), { logger: log.logger, registry, kernel: kernel.kernel, backends: { [RECORDING_TYPE]: backend.factory }, ...(opts.observer && { observer: opts.observer }) });
  return {
    agent,
    registry,
    kernel,
    backends: backend.instances,
    order,
    logLines: log.lines,
    subnetEnv: () => readFile(subnetFile, 'utf8'),
    dir,
    watchHandlers: () => registry.watchHandlers,
    dispose: async () => {
      await agent.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
