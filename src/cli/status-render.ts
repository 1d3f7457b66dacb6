import { BACKENDS, type BackendTable } from '../backend/index.js';
import type { AgentStatus, PeerStatus, RejectedLeases } from '../status/types.js';
import { renderTable } from '../lib/text-table.js';

/** Pure: `twill status` as text, sections first (the backend adds its own), then one row per peer. */
export function renderAgentStatus(s: AgentStatus, now: Date = new Date(), backends: BackendTable = BACKENDS): string {
  const lines: (readonly [string, string])[] = [
    ['node', `${s.node.name} (${s.node.publicIP ?? '?'} on ${s.node.iface ?? '?'}), twill ${s.version}`],
    ['state', `${s.state}, ${s.ready ? 'ready' : `NOT READY (waiting for ${s.waitingFor.join(', ') || 'start-up'})${s.reason === undefined ? '' : `: ${s.reason}`}`}`],
    ['network', s.network ? `${s.network.network}, /${s.network.subnetLen} subnets ${s.network.subnetMin} to ${s.network.subnetMax}, backend ${s.network.backendType}${staleNote(s.network.changedInEtcd)}` : 'no config yet'],
    ['lease', s.lease ? `${s.lease.subnet}, etcd lease ${s.lease.etcdLeaseId}, ${expiry(s.lease.expiresAt, now)}` : 'none held'],
    ['backend', s.backend ? `${s.backend.type}, mtu ${s.backend.mtu}, device ${s.backend.device ?? '-'}, ${s.backend.routes} route(s)` : 'not started'],
  ];
  const describe = s.backend && Object.hasOwn(backends, s.backend.type) ? backends[s.backend.type]?.describeStatus : undefined;
  if (describe && s.backend?.details) lines.push(...describe(s.backend.details));
  const e = s.etcd;
  lines.push(['etcd', `${e.endpoints.join(',')}: ${e.connected ? 'connected' : 'NOT CONNECTED'}, last contact ${e.lastContact ?? 'never'}, watch revision ${e.watchRevision ?? '-'}`]);
  lines.push(['rejected', rejected(s.rejectedLeases)]);
  const head = lines.map(([k, v]) => `${k.padEnd(8)} ${v}`).join('\n') + '\n';
  return `${head}\n${s.peers.length} peer(s)\n${s.peers.length === 0 ? '' : peerTable(s.peers)}`;
}

/** How many rejected keys a status line names; `--json` lists up to a hundred. */
const REJECTED_NAMED = 3;

function rejected(r: RejectedLeases): string {
  if (r.total === 0) return 'no lease keys';
  const named = r.leases.slice(0, REJECTED_NAMED).map((l) => `${l.subnet ?? l.key} ${l.reason}`);
  const more = r.total - named.length;
  return `${r.total} lease key(s), not programmed: ${named.join(', ')}${more > 0 ? ` (+${more} more, see --json)` : ''}`;
}

/** etcd's config no longer matches the one running: say what differs. */
function staleNote(changed: readonly string[]): string {
  return changed.length === 0 ? '' : `; CHANGED IN ETCD: ${changed.join(', ')} (a restart applies it)`;
}

function peerTable(peers: readonly PeerStatus[]): string {
  const traffic = peers.some((p) => p.traffic);
  const via = peers.some((p) => p.via !== undefined);
  const head = ['SUBNET', 'PUBLIC IP', 'BACKEND', 'STATE', ...(via ? ['VIA'] : []), 'SINCE', ...(traffic ? ['IN PKT/B', 'OUT PKT/B'] : []), 'REASON'];
  const rows = peers.map((p) => [
    p.subnet,
    p.publicIP,
    p.backendType ?? '-',
    p.state,
    ...(via ? [p.via ?? '-'] : []),
    p.since,
    ...(traffic ? [p.traffic ? `${p.traffic.packetsIn}/${p.traffic.bytesIn}` : '-', p.traffic ? `${p.traffic.packetsOut}/${p.traffic.bytesOut}` : '-'] : []),
    p.reason ?? '',
  ]);
  return renderTable(head, rows);
}

function expiry(at: string | null, now: Date): string {
  if (at === null) return 'a reservation (never expires)';
  const secs = Math.round((Date.parse(at) - now.getTime()) / 1000);
  return `expires ${at} (${secs >= 0 ? `in ${duration(secs)}` : `${duration(-secs)} ago`})`;
}

function duration(secs: number): string {
  const h = Math.floor(secs / 3600);
  const m = Math.floor((secs % 3600) / 60);
  return h > 0 ? `${h}h${m}m` : m > 0 ? `${m}m${secs % 60}s` : `${secs}s`;
}
