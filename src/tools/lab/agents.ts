import { mkdir, readFile, stat } from 'node:fs/promises';
import { TwillError } from '../../errors.js';
import { exec } from '../../kernel/exec.js';
import { netnsPids } from '../kernel/netns.js';
import { isAlive, startDaemon, stopProcess } from '../kernel/process.js';
import { parseSubnetEnv, type FlannelEnv } from './cni.js';
import { daemonEnv } from './etcd.js';
import { agentStatusAddr } from './prometheus.js';
import { hostFiles, networkConfigJson, type LabHost, type LabPlan } from './topology.js';
import { pollUntil } from './wait.js';

const SUBNET_TIMEOUT_MS = 30_000;

/** Writes the network config through the real CLI, from inside a host (so the underlay is tested too). */
export async function writeNetworkConfig(plan: LabPlan, cli: string): Promise<void> {
  const via = plan.hosts[0]?.ns ?? plan.etcd.ns;
  await exec(process.execPath, [cli, 'config', 'set', '--etcd-endpoints', plan.etcd.endpoints], {
    netns: via,
    input: networkConfigJson(plan),
    env: daemonEnv(),
  });
}

/** Pure: the agent's command line, as an operator would write it on a node. */
export function agentArgs(plan: Pick<LabPlan, 'etcd' | 'ipMasq' | 'udpDatapath'>, host: Pick<LabHost, 'dir' | 'ip'>, cli: string): string[] {
  const masq = plan.ipMasq ? ['--ip-masq'] : [];
  if (plan.udpDatapath) masq.push('--udp-datapath', plan.udpDatapath);
  const status = ['--status-addr', agentStatusAddr(host)];
  const files = hostFiles(host);
  return [cli, 'agent', '--etcd-endpoints', plan.etcd.endpoints, '--iface', 'eth0', '--subnet-file', files.subnetFile, '--cni-conf-file', files.cniConfFile, ...status, ...masq];
}

export async function startAgent(plan: LabPlan, host: LabHost, cli: string): Promise<number> {
  const files = hostFiles(host);
  await mkdir(host.dir, { recursive: true });
  return startDaemon({ cmd: process.execPath, args: agentArgs(plan, host, cli), netns: host.ns, logFile: files.log, pidFile: files.pidFile, env: daemonEnv() });
}

export interface SubnetWait {
  readonly pid: number;
  /** Only accept a subnet.env written after this time (ms since epoch); 0 accepts any. */
  readonly writtenAfterMs: number;
  readonly signal?: AbortSignal;
}

/** Waits for the host's agent to write subnet.env; fails early, pointing at its log, if it dies. */
export async function waitSubnetEnv(host: LabHost, wait: SubnetWait): Promise<FlannelEnv> {
  const files = hostFiles(host);
  const what = `agent on ${host.id} (${host.ns}) wrote no ${files.subnetFile}; see ${files.log}`;
  return pollUntil(async () => {
    if (!isAlive(wait.pid)) throw new TwillError('TWILL_ERR_LAB_STATE', `agent on ${host.id} exited; see ${files.log}`, { details: { log: files.log } });
    return readSubnetEnv(files.subnetFile, wait.writtenAfterMs);
  }, { timeoutMs: SUBNET_TIMEOUT_MS, what, signal: wait.signal });
}

async function readSubnetEnv(file: string, writtenAfterMs: number): Promise<FlannelEnv | undefined> {
  const info = await stat(file).catch(() => null);
  if (!info || info.mtimeMs < writtenAfterMs) return undefined;
  const parsed = parseSubnetEnv(await readFile(file, 'utf8'));
  return parsed.ok ? parsed.env : undefined;
}

/** Stops whatever runs in the host's namespace (its agent) and returns how many processes that was. */
export async function stopAgent(host: Pick<LabHost, 'ns'>): Promise<number> {
  const pids = await netnsPids(host.ns);
  await Promise.all(pids.map((pid) => stopProcess(pid)));
  return pids.length;
}
