import type { FastifyInstance } from 'fastify';
import { formatHostPort } from '../api/addr.js';
import { buildApi } from '../api/app.js';
import { listenOrExplain } from '../api/listen.js';
import type { Logger } from '../log.js';
import { createMetrics } from '../metrics/metrics.js';
import { VERSION } from '../version.js';
import { BACKENDS } from '../backend/index.js';
import { Agent, type AgentDeps } from './agent.js';
import type { AgentOptions } from './options.js';

export interface ServedDeps extends AgentDeps {
  /** Process metrics (cpu, memory); off in tests. */
  readonly defaultMetrics?: boolean;
}

export interface ServedAgent {
  readonly agent: Agent;
  readonly api: FastifyInstance;
}

/**
 * An agent with its metrics and status API, neither started nor listening. Build order:
 * metrics → agent → API; `deps` replace the real parts (tests: registry, kernel, backends).
 */
export function buildServedAgent(options: AgentOptions, deps: ServedDeps): ServedAgent {
  const backends = deps.backends ?? BACKENDS;
  const metrics = createMetrics({ status: () => agent.status(), version: VERSION, backends: Object.values(backends), ...(deps.defaultMetrics === false && { defaultMetrics: false }) });
  const agent = new Agent(options, { ...deps, backends, observer: metrics.observer });
  const api = buildApi({ status: agent, trace: (dst, from) => agent.trace(dst, from), metrics: metrics.registry, logger: deps.logger });
  return { agent, api };
}

/**
 * The served agent with its API already listening (so /readyz answers 503 while the agent
 * starts); the caller stops the agent first and closes the API last.
 */
export async function startServedAgent(options: AgentOptions, logger: Logger): Promise<ServedAgent> {
  const { agent, api } = buildServedAgent(options, { logger });
  await listen(api, options);
  logger.child({ component: 'api' }).info({ addr: formatHostPort(options.statusAddr) }, 'status API listening');
  return { agent, api };
}

async function listen(api: FastifyInstance, options: AgentOptions): Promise<void> {
  const target = { ...options.statusAddr, what: 'status API', inUseHint: ' (another twill agent?); choose another with --status-addr' };
  await listenOrExplain(api, target, formatHostPort(options.statusAddr));
}
