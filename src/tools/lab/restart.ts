import { TwillError } from '../../errors.js';
import { startAgent, stopAgent, waitSubnetEnv } from './agents.js';
import type { FlannelEnv } from './cni.js';
import { assertRoot, cliEntry } from './preflight.js';
import { planOf, saveState, updateHost, type LabState } from './state.js';
import type { LabDeps } from './up.js';

export interface RestartResult {
  readonly state: LabState;
  readonly before: string | null;
  readonly env: FlannelEnv;
}

/** Kills a host's agent and starts it again exactly as `up` did; waits until it rewrites subnet.env. */
export async function restartAgent(state: LabState, hostId: string, deps: LabDeps): Promise<RestartResult> {
  assertRoot();
  const host = planOf(state).hosts.find((h) => h.id === hostId);
  if (!host) {
    throw new TwillError('TWILL_ERR_OPTION_INVALID', `lab ${state.options.name} has no host ${hostId} (hosts h1..h${state.options.hosts})`, { details: { host: hostId } });
  }
  const cli = await cliEntry();
  const stopped = await stopAgent(host);
  deps.report(`${host.id}: stopped ${stopped} process(es) in ${host.ns}`);
  const startedAt = Date.now();
  const pid = await startAgent(planOf(state), host, cli);
  const next = updateHost(state, host.id, { pid });
  await saveState(next);
  deps.report(`${host.id}: agent restarted as pid ${pid}, waiting for subnet.env`);
  const env = await waitSubnetEnv(host, { pid, writtenAfterMs: startedAt, signal: deps.signal });
  const final = updateHost(next, host.id, { subnet: env.subnetNet });
  await saveState(final);
  return { state: final, before: state.hosts.find((h) => h.id === hostId)?.subnet ?? null, env };
}
