import { readdir } from 'node:fs/promises';
import { TwillError } from '../../errors.js';
import { listNetns } from '../kernel/netns.js';
import { startAgent, waitSubnetEnv, writeNetworkConfig } from './agents.js';
import { labDown, removeLabDir } from './down.js';
import { startEtcd } from './etcd.js';
import { isLabNamespace } from './naming.js';
import { buildNetwork } from './netns-setup.js';
import { wirePods } from './pods.js';
import { prometheusUrl, startPrometheus } from './prometheus.js';
import { assertBackendBuilt, assertRoot, cliEntry, findCniDir, requirePrograms, UP_PROGRAMS } from './preflight.js';
import { initialState, loadState, saveState, updateEtcdMember, updateHost, updatePod, type LabState } from './state.js';
import { planLab, planNamespaces, type LabOptions, type LabPlan } from './topology.js';

export interface LabDeps {
  /** Progress lines (the CLI writes them to stderr). */
  readonly report: (line: string) => void;
  /** Aborted on Ctrl-C: `up` stops and tears down what it built. */
  readonly signal?: AbortSignal;
}

interface Tools {
  readonly cli: string;
  readonly cniDir: string;
}

/** Builds the lab; if any step fails, tears down what was built and rethrows. */
export async function labUp(opts: LabOptions, deps: LabDeps): Promise<LabState> {
  assertRoot();
  assertBackendBuilt(opts.backend);
  await requirePrograms(opts.prometheus ? [...UP_PROGRAMS, 'prometheus'] : UP_PROGRAMS);
  const tools = { cniDir: await findCniDir(), cli: await cliEntry() };
  const plan = planLab(opts);
  await assertFree(plan);
  const state = initialState(opts, plan);
  await saveState(state);
  try {
    return await build(plan, state, tools, deps);
  } catch (err) {
    deps.report(`up failed, tearing down ${plan.prefix}* (logs stay in ${plan.dir} until "twill lab down")`);
    await labDown(opts.name, opts.dir, { keepDir: true }).catch((e: unknown) => deps.report(`teardown failed too: ${String(e)}`));
    const last = await loadState(opts.dir).catch(() => null);
    if (last) await saveState({ ...last, phase: 'failed' }).catch(() => undefined);
    throw err;
  }
}

/**
 * Refuses to build over a lab that is up or left over (that one must not be torn down by our
 * failure). The logs of an earlier failed `up` are cleared, as `down` would.
 */
async function assertFree(plan: LabPlan): Promise<void> {
  const leftover = (await listNetns()).filter((ns) => isLabNamespace(plan.name, ns));
  const previous = await loadState(plan.dir).catch(() => null);
  if (leftover.length === 0 && previous?.phase === 'failed') await removeLabDir(plan.dir);
  const entries = await readdir(plan.dir).catch(() => []);
  if (leftover.length > 0 || entries.length > 0) {
    const what = leftover.length > 0 ? `namespaces ${leftover.join(', ')} exist` : `${plan.dir} is not empty`;
    throw new TwillError('TWILL_ERR_LAB_STATE', `lab "${plan.name}" is already up or left over (${what}); run "twill lab down --name ${plan.name}" first`, {
      details: { name: plan.name, dir: plan.dir },
    });
  }
}

async function build(plan: LabPlan, initial: LabState, tools: Tools, deps: LabDeps): Promise<LabState> {
  let state = initial;
  const save = async (next: LabState): Promise<void> => {
    state = next;
    await saveState(state);
  };
  const router = plan.router ? `, router ${plan.router.ns}` : '';
  deps.report(`namespaces: ${planNamespaces(plan).length} named ${plan.prefix}* (${plan.topology}: ${plan.segments.length} segment(s)${router})`);
  await buildNetwork(plan, deps.signal);
  deps.report(`etcd: ${plan.etcd.members.length} member(s) at ${plan.etcd.endpoints} in ${plan.etcd.ns}`);
  const members = await startEtcd(plan, deps.signal);
  await save(members.reduce((s, m) => updateEtcdMember(s, m.name, { pid: m.pid }), state));
  deps.report(`config: ${plan.backend}, network ${plan.network}`);
  await writeNetworkConfig(plan, tools.cli);
  const pids = new Map<string, number>();
  for (const host of plan.hosts) {
    pids.set(host.id, await startAgent(plan, host, tools.cli));
    await save(updateHost(state, host.id, { pid: pids.get(host.id) ?? null }));
  }
  deps.report(`agents: ${plan.hosts.length} started, waiting for their subnet.env`);
  const envs = await Promise.all(plan.hosts.map((h) => waitSubnetEnv(h, { pid: pids.get(h.id) ?? 0, writtenAfterMs: 0, signal: deps.signal })));
  await save(plan.hosts.reduce((s, h, i) => updateHost(s, h.id, { subnet: envs[i]?.subnetNet ?? null }), state));
  deps.report(`pods: ${plan.pods.length} via the agents' CNI conflists (bridge + host-local, portmap)`);
  await save(await wireAllPods(plan, state, tools.cniDir));
  if (state.options.prometheus) await save({ ...state, prometheus: await startLabPrometheus(plan, deps) });
  await save({ ...state, phase: 'up' });
  return state;
}

async function startLabPrometheus(plan: LabPlan, deps: LabDeps): Promise<NonNullable<LabState['prometheus']>> {
  const url = prometheusUrl(plan);
  deps.report(`prometheus: ${url} in ${plan.etcd.ns}, scraping ${plan.hosts.length} agent(s) every 1 s`);
  return { ns: plan.etcd.ns, url, pid: await startPrometheus(plan, deps.signal) };
}

async function wireAllPods(plan: LabPlan, state: LabState, cniDir: string): Promise<LabState> {
  const perHost = await Promise.all(plan.hosts.map((h) => wirePods(h, plan.pods.filter((p) => p.host === h.id), cniDir)));
  return perHost.flatMap((m) => [...m]).reduce((s, [pod, ip]) => updatePod(s, pod, { ip }), state);
}
