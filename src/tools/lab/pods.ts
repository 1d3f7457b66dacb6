import { mkdir, readFile } from 'node:fs/promises';
import { TwillError } from '../../errors.js';
import { exec } from '../../kernel/exec.js';
import { netnsPath } from '../kernel/netns.js';
import { cniEnv, conflistPluginConfs, loopbackConf, resultIpv4 } from './cni.js';
import { hostFiles, type LabHost, type LabPod } from './topology.js';
import { pollUntil } from './wait.js';

const CONFLIST_TIMEOUT_MS = 10_000;

/**
 * Wires pods as a runtime does, from the conflist the host's agent wrote (--cni-conf-file):
 * `loopback` for lo, then each plugin of the list in turn (bridge with host-local over the
 * host's subnet, then portmap), each given the one before's result; all run inside the host namespace.
 */
export async function wirePods(host: LabHost, pods: readonly LabPod[], cniDir: string): Promise<Map<string, string>> {
  const files = hostFiles(host);
  await mkdir(files.cniDir, { recursive: true });
  const conflist = await pollUntil(() => readFile(files.cniConfFile, 'utf8').catch(() => undefined), { timeoutMs: CONFLIST_TIMEOUT_MS, what: `the agent on ${host.id} wrote no ${files.cniConfFile}` });
  const confs = conflistPluginConfs(conflist, files.cniDir);
  const ips = new Map<string, string>();
  // One pod at a time per host: host-local allocates from one per-host store.
  for (const pod of pods) ips.set(pod.id, await wirePod(host, pod, confs, cniDir));
  return ips;
}

async function wirePod(host: LabHost, pod: LabPod, confs: readonly Record<string, unknown>[], cniDir: string): Promise<string> {
  const call = { command: 'ADD', containerId: pod.ns, netnsPath: netnsPath(pod.ns), cniPath: cniDir } as const;
  await runPlugin(host, `${cniDir}/loopback`, cniEnv({ ...call, ifName: 'lo' }, process.env.PATH), loopbackConf());
  let result = '';
  for (const conf of confs) {
    const prev = result === '' ? {} : { prevResult: JSON.parse(result) as unknown };
    result = await runPlugin(host, `${cniDir}/${String(conf['type'])}`, cniEnv({ ...call, ifName: 'eth0' }, process.env.PATH), { ...conf, ...prev });
  }
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
