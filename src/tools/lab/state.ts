import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { TwillError } from '../../errors.js';
import { ETCD_MEMBER_COUNTS } from './etcd-members.js';
import { LAB_BACKENDS, planLab, type LabOptions, type LabPlan } from './topology.js';
import { LAB_TOPOLOGIES } from './underlay.js';

/** One etcd member: pid null while it is stopped (killed by a test, say). */
const memberSchema = z.object({ name: z.string(), endpoint: z.string(), pid: z.number().int().nullable() });

/**
 * <labdir>/state.json: the options the lab was built from (the plan is recomputed from them)
 * plus what only running it tells: pids, subnets, pod IPs. Written first thing in `up`, so its
 * presence also marks the directory as a lab directory that `down` may delete.
 */
const stateSchema = z.object({
  version: z.literal(1),
  // failed: `up` gave up and tore the namespaces down, keeping the logs for a look.
  phase: z.enum(['building', 'up', 'failed']),
  options: z.object({
    name: z.string(),
    hosts: z.number().int().positive(),
    podsPerHost: z.number().int().nonnegative(),
    backend: z.string().refine((b) => LAB_BACKENDS.includes(b), { error: 'is not a backend of this build' }),
    // Labs from before --topology existed were flat.
    topology: z.enum(LAB_TOPOLOGIES).default('flat'),
    dir: z.string(),
    // Labs from before --ip-masq existed ran without it.
    ipMasq: z.boolean().optional(),
    prometheus: z.boolean().optional(),
    // Labs from before the option existed had LAB_NETWORK.
    network: z.string().optional(),
    // Labs from before --etcd-members existed ran one member.
    etcdMembers: z.literal(ETCD_MEMBER_COUNTS).optional(),
    directRouting: z.boolean().optional(),
    udpDatapath: z.enum(['native', 'dgram']).optional(),
  }),
  // endpoint: the first member's. Labs from before --etcd-members recorded one pid, no members.
  etcd: z
    .object({ ns: z.string(), endpoint: z.string(), pid: z.number().int().nullable().optional(), members: z.array(memberSchema).optional() })
    .transform(({ ns, endpoint, pid, members }) => ({ ns, endpoint, members: members ?? [{ name: 'etcd1', endpoint, pid: pid ?? null }] })),
  // Set once `up --prometheus` started it; labs from before --prometheus have none.
  prometheus: z.object({ ns: z.string(), url: z.string(), pid: z.number().int() }).nullable().default(null),
  hosts: z.array(
    z.object({
      id: z.string(),
      ns: z.string(),
      ip: z.string(),
      // The underlay segment (A, B) the host sits on; always A in a flat lab.
      segment: z.string().default('A'),
      pid: z.number().int().nullable(),
      subnet: z.string().nullable(),
    }),
  ),
  pods: z.array(z.object({ id: z.string(), host: z.string(), ns: z.string(), ip: z.string().nullable() })),
});

export type LabState = z.infer<typeof stateSchema>;
export type HostState = LabState['hosts'][number];
export type PodState = LabState['pods'][number];
export type EtcdMemberState = LabState['etcd']['members'][number];

export function stateFile(dir: string): string {
  return `${dir}/state.json`;
}

export function initialState(opts: LabOptions, plan: LabPlan): LabState {
  return {
    version: 1,
    phase: 'building',
    options: { ...opts },
    etcd: { ns: plan.etcd.ns, endpoint: plan.etcd.endpoint, members: plan.etcd.members.map((m) => ({ name: m.name, endpoint: m.clientUrl, pid: null })) },
    prometheus: null,
    hosts: plan.hosts.map((h) => ({ id: h.id, ns: h.ns, ip: h.ip, segment: h.segment, pid: null, subnet: null })),
    pods: plan.pods.map((p) => ({ id: p.id, host: p.host, ns: p.ns, ip: null })),
  };
}

export function planOf(state: LabState): LabPlan {
  return planLab(state.options);
}

/** Written atomically (temp file + rename), so a crash never leaves half a file. */
export async function saveState(state: LabState): Promise<void> {
  const file = stateFile(state.options.dir);
  await mkdir(state.options.dir, { recursive: true });
  await writeFile(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

/** The state, or null when there is no state file; a corrupt one is an error. */
export async function loadState(dir: string): Promise<LabState | null> {
  const text = await readFile(stateFile(dir), 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return null;
    throw e;
  });
  if (text === null) return null;
  const parsed = safeJson(text);
  const result = stateSchema.safeParse(parsed);
  if (!result.success) {
    throw new TwillError('TWILL_ERR_LAB_STATE', `${stateFile(dir)} is not a lab state file; run "twill lab down" to clean up`, {
      cause: result.error,
    });
  }
  return result.data;
}

/** Like loadState, but a lab that is not there is an error pointing at `lab up`. */
export async function requireState(dir: string, name: string): Promise<LabState> {
  const state = await loadState(dir);
  if (!state) {
    throw new TwillError('TWILL_ERR_LAB_STATE', `lab "${name}" is not up (no ${stateFile(dir)}); run "twill lab up --name ${name}"`, {
      details: { dir },
    });
  }
  return state;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

export function updateHost(state: LabState, id: string, patch: Partial<HostState>): LabState {
  return { ...state, hosts: state.hosts.map((h) => (h.id === id ? { ...h, ...patch } : h)) };
}

export function updateEtcdMember(state: LabState, name: string, patch: Partial<EtcdMemberState>): LabState {
  return { ...state, etcd: { ...state.etcd, members: state.etcd.members.map((m) => (m.name === name ? { ...m, ...patch } : m)) } };
}

export function updatePod(state: LabState, id: string, patch: Partial<PodState>): LabState {
  return { ...state, pods: state.pods.map((p) => (p.id === id ? { ...p, ...patch } : p)) };
}
