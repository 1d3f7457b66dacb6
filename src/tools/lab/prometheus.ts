import { mkdir, writeFile } from 'node:fs/promises';
import { TwillError } from '../../errors.js';
import { httpGetInNetns } from '../kernel/http.js';
import { isAlive, startDaemon } from '../kernel/process.js';
import { daemonEnv } from './etcd.js';
import type { LabPlan } from './topology.js';
import { pollUntil } from './wait.js';

/** Every lab agent serves its status API on its underlay address, this port. */
export const AGENT_STATUS_PORT = 8475;
export const PROMETHEUS_PORT = 9090;
const READY_TIMEOUT_MS = 30_000;

export function agentStatusAddr(host: { readonly ip: string }): string {
  return `${host.ip}:${AGENT_STATUS_PORT}`;
}

/** Prometheus runs in the etcd namespace, on its underlay address: every host reaches it, and it every host. */
export function prometheusUrl(plan: Pick<LabPlan, 'etcd'>): string {
  return `http://${plan.etcd.ip}:${PROMETHEUS_PORT}`;
}

export function prometheusFiles(dir: string) {
  const base = `${dir}/prometheus`;
  return { dir: base, config: `${base}/prometheus.yml`, dataDir: `${base}/data`, log: `${base}/prometheus.log`, pidFile: `${base}/prometheus.pid` };
}

/** Pure: a scrape config with one static target per agent (label `host`), every second. */
export function prometheusConfig(plan: Pick<LabPlan, 'name' | 'hosts'>): string {
  const targets = plan.hosts.map((h) => [`      - targets: ['${agentStatusAddr(h)}']`, `        labels: { host: '${h.id}' }`].join('\n'));
  return [
    `# twill lab ${plan.name}: written by "twill lab up --prometheus"`,
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: twill',
    '    static_configs:',
    ...targets,
    '',
  ].join('\n');
}

/** Pure: Prometheus's flags; config, data and log all in the lab directory. */
export function prometheusArgs(plan: Pick<LabPlan, 'etcd' | 'dir'>): string[] {
  const files = prometheusFiles(plan.dir);
  return [
    `--config.file=${files.config}`,
    `--storage.tsdb.path=${files.dataDir}`,
    `--web.listen-address=${plan.etcd.ip}:${PROMETHEUS_PORT}`,
    '--storage.tsdb.retention.time=1d',
  ];
}

/**
 * Starts Debian's prometheus in the etcd namespace and waits until it has scraped every agent
 * once (its target discovery alone takes about 5 s), so that queries answer right after `up`.
 */
export async function startPrometheus(plan: LabPlan, signal?: AbortSignal): Promise<number> {
  const files = prometheusFiles(plan.dir);
  await mkdir(files.dataDir, { recursive: true });
  await writeFile(files.config, prometheusConfig(plan));
  const pid = await startDaemon({ cmd: 'prometheus', args: prometheusArgs(plan), netns: plan.etcd.ns, logFile: files.log, pidFile: files.pidFile, env: daemonEnv() });
  const url = `${prometheusUrl(plan)}/-/ready`;
  await pollUntil(
    async () => {
      if (!isAlive(pid)) throw new TwillError('TWILL_ERR_LAB_STATE', `prometheus in ${plan.etcd.ns} exited; see ${files.log}`, { details: { log: files.log } });
      const [answer] = await httpGetInNetns(plan.etcd.ns, [url], 1000);
      return answer?.status === 200 ? true : undefined;
    },
    { timeoutMs: READY_TIMEOUT_MS, what: `prometheus in ${plan.etcd.ns} did not become ready; see ${files.log}`, signal },
  );
  const targets = `${prometheusUrl(plan)}/api/v1/targets?state=active`;
  await pollUntil(
    async () => {
      const [answer] = await httpGetInNetns(plan.etcd.ns, [targets], 1000);
      return answer?.status === 200 && countHealthy(answer.body) === plan.hosts.length ? true : undefined;
    },
    { timeoutMs: READY_TIMEOUT_MS, what: `prometheus did not scrape all ${plan.hosts.length} agent(s); see ${targets}`, signal },
  );
  return pid;
}

/** Pure: how many targets in a /api/v1/targets answer were scraped successfully. */
export function countHealthy(body: string): number {
  try {
    const parsed = JSON.parse(body) as { data?: { activeTargets?: { health?: string }[] } };
    return (parsed.data?.activeTargets ?? []).filter((t) => t.health === 'up').length;
  } catch {
    return 0;
  }
}
