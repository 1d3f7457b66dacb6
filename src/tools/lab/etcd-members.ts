import { TwillError } from '../../errors.js';

/**
 * Pure: the lab's etcd cluster as data. Every member runs in the lab's etcd namespace on an
 * address of its own on that namespace's eth0 (clients, port 2379), and talks to the other
 * members on a loopback address of its own (127.0.0.<i>:2380), so peer traffic never leaves
 * the namespace. A 1-member lab is exactly what the lab always ran: etcd1 on 198.18.0.2.
 */
export const ETCD_MEMBER_COUNTS = [1, 3] as const;
export type EtcdMemberCount = (typeof ETCD_MEMBER_COUNTS)[number];

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;

export interface EtcdMemberPlan {
  /** etcd1, etcd2, ...: the member's `--name`, and how lab helpers name it. */
  readonly name: string;
  /** Its underlay address (an address of the etcd namespace's eth0). */
  readonly ip: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
}

export function parseEtcdMembers(text: string): EtcdMemberCount {
  const found = ETCD_MEMBER_COUNTS.find((n) => String(n) === text.trim());
  if (found === undefined) {
    throw new TwillError('TWILL_ERR_OPTION_INVALID', `--etcd-members must be ${ETCD_MEMBER_COUNTS.join(' or ')}, got "${text}"`, {
      details: { option: '--etcd-members', value: text },
    });
  }
  return found;
}

/** `ips[i]` is member i+1's underlay address; the caller picks them (underlay.ts owns addresses). */
export function planEtcdMembers(ips: readonly string[]): EtcdMemberPlan[] {
  return ips.map((ip, i) => ({
    name: `etcd${i + 1}`,
    ip,
    clientUrl: `http://${ip}:${ETCD_CLIENT_PORT}`,
    peerUrl: `http://127.0.0.${i + 1}:${ETCD_PEER_PORT}`,
  }));
}

/** `--initial-cluster`: every member's name and peer URL. */
export function initialCluster(members: readonly EtcdMemberPlan[]): string {
  return members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
}

/** What agents and `config set` get as `--etcd-endpoints`: every member's client URL. */
export function clientEndpoints(members: readonly EtcdMemberPlan[]): string {
  return members.map((m) => m.clientUrl).join(',');
}

/**
 * etcd's flags for one member. Clients only on its underlay address. The same flags restart it:
 * once its data dir exists, etcd ignores the initial-cluster flags and rejoins from its data.
 */
export function etcdMemberArgs(member: EtcdMemberPlan, members: readonly EtcdMemberPlan[], dataDir: string): string[] {
  return [
    ...['--name', member.name, '--data-dir', dataDir],
    ...['--listen-client-urls', member.clientUrl, '--advertise-client-urls', member.clientUrl],
    ...['--listen-peer-urls', member.peerUrl, '--initial-advertise-peer-urls', member.peerUrl],
    ...['--initial-cluster', initialCluster(members), '--initial-cluster-state', 'new'],
  ];
}

export function etcdMemberFiles(labDir: string, name: string) {
  const dir = `${labDir}/etcd/${name}`;
  return { dir, dataDir: `${dir}/data`, log: `${dir}/etcd.log`, pidFile: `${dir}/etcd.pid` };
}

/** The member named `name`, or an option error listing the lab's members. */
export function findMember<M extends { readonly name: string }>(members: readonly M[], name: string): M {
  const found = members.find((m) => m.name === name);
  if (!found) {
    throw new TwillError('TWILL_ERR_OPTION_INVALID', `the lab has no etcd member "${name}" (have: ${members.map((m) => m.name).join(', ')})`, {
      details: { member: name },
    });
  }
  return found;
}

/**
 * From `etcdctl endpoint status -w fields` for one endpoint: whether that member leads. Fields,
 * not JSON: the 64-bit member IDs would be rounded by JSON.parse. null for any other text.
 */
export function leadsFromStatusFields(text: string): boolean | null {
  const field = (name: string): string | undefined => new RegExp(`^"${name}" : (\\d+)$`, 'm').exec(text)?.[1];
  const [id, leader] = [field('MemberID'), field('Leader')];
  if (id === undefined || leader === undefined) return null;
  return leader !== '0' && id === leader;
}
