import { readFile } from 'node:fs/promises';
import { netnsPids } from '../kernel/netns.js';
import { readAgentApis, renderAgentApis, type AgentApiView } from './agent-api.js';
import { parseSubnetEnv } from './cni.js';
import { renderTable } from '../../lib/text-table.js';
import { renderUnderlay } from './render.js';
import { planOf, stateFile, type LabState } from './state.js';
import { memberLeads } from './etcd.js';
import { hostFiles } from './topology.js';
import type { Underlay } from './underlay.js';

export interface DaemonStatus {
  readonly pid: number | null;
  /** The recorded pid still runs inside the namespace (a reused pid elsewhere does not count). */
  readonly alive: boolean;
}

export interface HostStatus {
  readonly id: string;
  readonly ns: string;
  /** The underlay segment (A, B) the host sits on. */
  readonly segment: string;
  readonly ip: string;
  readonly subnet: string;
  readonly agent: DaemonStatus;
}

/** One etcd member; `leads` is null when it did not answer. */
export interface EtcdMemberStatus extends DaemonStatus {
  readonly name: string;
  readonly endpoint: string;
  readonly leads: boolean | null;
}

export interface LabStatus {
  readonly state: LabState;
  readonly underlay: Underlay;
  readonly etcd: readonly EtcdMemberStatus[];
  readonly hosts: readonly HostStatus[];
  /** Each agent's readiness and peers, from its status API. */
  readonly agents: readonly AgentApiView[];
  readonly prometheus: (DaemonStatus & { readonly url: string }) | null;
}

async function daemon(ns: string, pid: number | null): Promise<DaemonStatus> {
  return { pid, alive: pid !== null && (await netnsPids(ns)).includes(pid) };
}

/** The subnet as the host's subnet.env says now (the agent may have changed it since `up`). */
async function currentSubnet(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => null);
  if (text === null) return 'no subnet.env';
  const parsed = parseSubnetEnv(text);
  return parsed.ok ? parsed.env.subnetNet : `invalid subnet.env (${parsed.reason})`;
}

export async function labStatus(state: LabState): Promise<LabStatus> {
  const plan = planOf(state);
  const hosts = await Promise.all(
    plan.hosts.map(async (h) => {
      const pid = state.hosts.find((s) => s.id === h.id)?.pid ?? null;
      return { id: h.id, ns: h.ns, segment: h.segment, ip: h.ip, subnet: await currentSubnet(hostFiles(h).subnetFile), agent: await daemon(h.ns, pid) };
    }),
  );
  const underlay = { topology: plan.topology, segments: plan.segments, router: plan.router };
  const prometheus = state.prometheus && { url: state.prometheus.url, ...(await daemon(state.prometheus.ns, state.prometheus.pid)) };
  const etcd = await Promise.all(
    state.etcd.members.map(async (m) => {
      const d = await daemon(state.etcd.ns, m.pid);
      const ask = d.alive && state.etcd.members.length > 1; // a lone member always leads
      return { ...d, name: m.name, endpoint: m.endpoint, leads: ask ? await memberLeads(state.etcd.ns, m.endpoint) : null };
    }),
  );
  return { state, underlay, etcd, hosts, agents: await readAgentApis(state), prometheus };
}

const showDaemon = (d: DaemonStatus): string => (d.pid === null ? 'not started' : `pid ${d.pid} ${d.alive ? 'alive' : 'DEAD'}`);
const showMember = (m: EtcdMemberStatus): string => `${m.name} ${m.endpoint} ${m.pid === null ? 'stopped' : showDaemon(m)}${m.leads === true ? ' leader' : ''}`;

/** Pure rendering of a status snapshot. */
export function renderStatus(s: LabStatus): string {
  const { options, phase } = s.state;
  const dir = options.dir;
  const direct = options.directRouting === true ? ' with DirectRouting' : '';
  const head = `lab ${options.name} (${phase}, backend ${options.backend}${direct}, topology ${s.underlay.topology})\n`;
  const outside = planOf(s.state).outside;
  // One member: one line, as before members existed; more: one line each under the namespace.
  const [only] = s.etcd;
  const members = s.etcd.length === 1 && only ? ` ${only.endpoint} ${showDaemon(only)}` : s.etcd.map((m) => `\n  ${showMember(m)}`).join('');
  const etcd = `etcd ${s.state.etcd.ns}${members}\noutside ${outside.ns} ${outside.ip} (ip-masq ${options.ipMasq === true ? 'on' : 'off'})\n\n`;
  const hostRows = s.hosts.map((h) => [h.id, h.ns, h.segment, h.ip, h.subnet, showDaemon(h.agent)]);
  const hosts = renderTable(['HOST', 'NAMESPACE', 'SEGMENT', 'UNDERLAY', 'SUBNET', 'AGENT'], hostRows);
  const pods = renderTable(['POD', 'NAMESPACE', 'IP'], s.state.pods.map((p) => [p.id, p.ns, p.ip ?? '-']));
  const files = `\nlab dir ${dir}: ${stateFile(dir)}, ${dir}/etcd/<member>/{etcd.log,data/}, ${dir}/h<i>/{agent.log,subnet.env,agent.pid,cni/}\n`;
  const prom = s.prometheus ? `prometheus ${s.prometheus.url} ${showDaemon(s.prometheus)} (scrapes every agent's /metrics)\n` : '';
  const agents = '\n' + renderAgentApis(s.agents, s.state);
  return head + renderUnderlay(s.underlay) + etcd + prom + hosts + agents + '\n' + pods + files;
}
