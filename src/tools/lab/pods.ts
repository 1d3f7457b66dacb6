import { mkdir } from 'node:fs/promises';
import { TwillError } from '../../errors.js';
import { exec } from '../../kernel/exec.js';
import { netnsPath } from '../kernel/netns.js';
import { bridgeConf, cniEnv, loopbackConf, resultIpv4, type FlannelEnv } from './cni.js';
import { hostFiles, type LabHost, type LabPod } from './topology.js';

/**
 * Wires pods exactly as the flannel CNI plugin would: `loopback` for lo, then `bridge` with
 * host-local IPAM over the host's subnet, both run inside the host namespace.
 */
export async function wirePods(host: LabHost, pods: readonly LabPod[], env: FlannelEnv, cniDir: string): Promise<Map<string, string>> {
  const dataDir = hostFiles(host).cniDir;
  await mkdir(dataDir, { recursive: true });
  const ips = new Map<string, string>();
  // One pod at a time per host: host-local allocates from one per-host store.
  for (const pod of pods) ips.set(pod.id, await wirePod(host, pod, env, cniDir, dataDir));
  return ips;
}

async function wirePod(host: LabHost, pod: LabPod, env: FlannelEnv, cniDir: string, dataDir: string): Promise<string> {
  const call = { command: 'ADD', containerId: pod.ns, netnsPath: netnsPath(pod.ns), cniPath: cniDir } as const;
  await runPlugin(host, `${cniDir}/loopback`, cniEnv({ ...call, ifName: 'lo' }, process.env.PATH), loopbackConf());
  const result = await runPlugin(host, `${cniDir}/bridge`, cniEnv({ ...call, ifName: 'eth0' }, process.env.PATH), bridgeConf(env, dataDir));
  const ip = resultIpv4(result);
  if (!ip) throw new TwillError('TWILL_ERR_LAB_STATE', `CNI bridge gave pod ${pod.id} no IPv4 address: ${result.trim()}`, { details: { pod: pod.id } });
  return ip;
}

/** A CNI plugin reports failures as JSON on stdout, so that is what the error carries. */
async function runPlugin(host: LabHost, plugin: string, env: NodeJS.ProcessEnv, conf: Record<string, unknown>): Promise<string> {
  const res = await exec(plugin, [], { netns: host.ns, env, input: JSON.stringify(conf), allowFailure: true });
  if (res.code !== 0) {
    const why = `${res.stdout.trim()} ${res.stderr.trim()}`.trim();
    throw new TwillError('TWILL_ERR_KERNEL_COMMAND', `CNI ${plugin} ADD in ${host.ns} (pod netns ${env.CNI_NETNS}) failed: ${why}`, {
      details: { ...res, plugin, host: host.id },
    });
  }
  return res.stdout;
}
