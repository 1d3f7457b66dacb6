import type { FastifyInstance } from 'fastify';
import { formatHostPort } from '../api/addr.js';
import { buildApi } from '../api/app.js';
import { TwillError } from '../errors.js';
import type { Logger } from '../log.js';
import { createMetrics } from '../metrics/metrics.js';
import { VERSION } from '../version.js';
import { Agent } from './agent.js';
import type { AgentOptions } from './options.js';

export interface ServedAgent {
  readonly agent: Agent;
  readonly api: FastifyInstance;
}

/**
 * An agent with its metrics and status API, the API already listening (so /readyz answers 503
 * while the agent starts). Start order: metrics → agent (not started) → API; the caller stops
 * the agent first and closes the API last.
 */
export async function startServedAgent(options: AgentOptions, logger: Logger): Promise<ServedAgent> {
  const metrics = createMetrics({ status: () => agent.status(), version: VERSION });
  const agent = new Agent(options, { logger, observer: metrics.observer });
  const api = buildApi({ status: agent, metrics: metrics.registry, logger });
  await listen(api, options);
  logger.child({ component: 'api' }).info({ addr: formatHostPort(options.statusAddr) }, 'status API listening');
  return { agent, api };
}

async function listen(api: FastifyInstance, options: AgentOptions): Promise<void> {
  const addr = formatHostPort(options.statusAddr);
  try {
    await api.listen({ host: options.statusAddr.host, port: options.statusAddr.port });
  } catch (err) {
    await api.close().catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new TwillError('TWILL_ERR_API_ADDR_IN_USE', `status API: ${addr} is already in use (another twill agent?); choose another with --status-addr`, { cause: err, details: { addr } });
    }
    throw new TwillError('TWILL_ERR_API_ADDR', `status API: cannot listen on ${addr}: ${(err as Error).message}`, { cause: err, details: { addr, errno: code } });
  }
}
