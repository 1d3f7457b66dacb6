import type { AgentStatus } from '../../status/types.js';
import { httpGetInNetns } from '../kernel/http.js';
import { agentStatusAddr } from './prometheus.js';
import { renderTable } from '../../lib/text-table.js';
import type { LabState } from './state.js';

/** One agent as its status API reports it (or why it could not be asked). */
export interface AgentApiView {
  readonly host: string;
  readonly addr: string;
  /** null when the API did not answer; `error` says why. */
  readonly status: AgentStatus | null;
  readonly error?: string;
}

/**
 * Asks every agent's /v1/status at once, from one helper process in the etcd namespace (lab
 * addresses are reachable only inside the lab; in a routed lab etcd's gateway is the router).
 */
export async function readAgentApis(state: LabState): Promise<AgentApiView[]> {
  const urls = state.hosts.map((h) => `http://${agentStatusAddr(h)}/v1/status`);
  const answers = await httpGetInNetns(state.etcd.ns, urls).catch((err: unknown) => urls.map((url) => ({ url, status: 0, body: `cannot query: ${(err as Error).message}` })));
  return state.hosts.map((h, i) => {
    const a = answers[i];
    const addr = agentStatusAddr(h);
    if (!a || a.status !== 200) return { host: h.id, addr, status: null, error: a ? (a.status === 0 ? a.body : `HTTP ${a.status}`) : 'no answer' };
    return { host: h.id, addr, status: JSON.parse(a.body) as AgentStatus };
  });
}

/** Pure: a table of readiness and peer states; peers are named by host where their IP is a lab host's. */
export function renderAgentApis(views: readonly AgentApiView[], state: Pick<LabState, 'hosts'>): string {
  const hostByIp = new Map(state.hosts.map((h) => [h.ip, h.id]));
  const rows = views.map((v) => {
    const s = v.status;
    if (!s) return [v.host, v.addr, `unreachable (${v.error ?? '?'})`, '-'];
    const ready = s.ready ? 'ready' : `NOT READY (${s.waitingFor.join(', ') || s.state})${s.reason === undefined ? '' : `: ${s.reason}`}`;
    const peers = s.peers.map((p) => `${hostByIp.get(p.publicIP) ?? p.subnet} ${p.state}`).join(', ');
    return [v.host, v.addr, ready, peers || 'none'];
  });
  return renderTable(['AGENT', 'STATUS API', 'READY', 'PEERS'], rows);
}
