import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../src/agent/agent.js';
import type { AgentOptions } from '../../src/agent/options.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { EtcdRegistry } from '../../src/subnet/etcd-registry.js';
import { fakeKernel } from './fake-kernel.js';
import { memoryLogger } from './logger.js';
import { RECORDING_TYPE, recordingBackend, type BackendRecord } from './recording-backend.js';

export const ETCD_AGENT_CONFIG = `{"Network":"10.244.0.0/16","Backend":{"Type":"${RECORDING_TYPE}"}}`;

export interface EtcdAgent {
  readonly agent: Agent;
  readonly backends: BackendRecord[];
  readonly logLines: () => Record<string, unknown>[];
  /** A gauge's value as Prometheus would scrape it now. */
  gauge(name: string): Promise<number>;
  /** Another node's lease, written straight to etcd (TTL 10 min). */
  addPeer(cidr: string, publicIP: string): Promise<void>;
  dispose(): Promise<void>;
}

/**
 * An agent in this process on a real etcd (its own etcd registry, as `twill agent` builds it),
 * a fake kernel and the recording backend; the config is put first.
 */
export async function etcdAgent(endpoints: readonly string[], config = ETCD_AGENT_CONFIG): Promise<EtcdAgent> {
  const prefix = '/coreos.com/network';
  const admin = new EtcdRegistry({ endpoints, prefix });
  await admin.putConfig(config);
  const dir = await mkdtemp(join(tmpdir(), 'twill-etcd-agent-'));
  const options: AgentOptions = Object.freeze({
    etcdEndpoints: endpoints,
    etcdPrefix: prefix,
    iface: null,
    publicIp: null,
    subnetFile: join(dir, 'subnet.env'),
    subnetLeaseTtlSeconds: 120,
    statusAddr: { host: '127.0.0.1', port: 0 },
    nodeName: 'node-a',
    ipMasq: false,
    forwardRules: false,
  });
  const log = memoryLogger();
  const backend = recordingBackend();
  const agent = new Agent(options, { logger: log.logger, kernel: fakeKernel({ iface: { name: 'eth0', address: '198.18.0.1', mtu: 1500 } }).kernel, backends: { [RECORDING_TYPE]: backend.factory } });
  const metrics = createMetrics({ status: () => agent.status(), version: 't', backends: [], defaultMetrics: false });
  return {
    agent,
    backends: backend.instances,
    logLines: log.lines,
    gauge: async (name) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await metrics.registry.metrics())?.[1]),
    addPeer: async (cidr, publicIP) => void (await admin.createLease(parseCidr(cidr)!, { publicIP, publicIPv6: null, backendType: RECORDING_TYPE }, 600)),
    dispose: async () => {
      await agent.stop();
      admin.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Warning and error lines as "component: msg". */
export function warnings(lines: readonly Record<string, unknown>[]): string[] {
  return lines.filter((l) => (l.level as number) >= 40).map((l) => `${String(l.component)}: ${String(l.msg)}`);
}
