import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { isTwillError } from '../errors.js';
import type { PathTrace } from '../trace/path.js';
import type { Logger } from '../log.js';
import type { StatusSource } from '../status/types.js';
import { frameworkErrors, replyWithCodedErrors, sendError } from './reply.js';

export type { ApiErrorBody } from './reply.js';

export interface ApiDeps {
  readonly status: StatusSource;
  /** `GET /v1/trace?dst=IP[&from=IP]`: the way a packet takes from this node (absent: 404). */
  readonly trace?: (dst: string, from?: string) => Promise<PathTrace>;
  readonly metrics: Registry;
  readonly logger: Logger;
}

/** Every path the API serves; all are GET (HEAD comes with it). */
export const API_PATHS = ['/healthz', '/readyz', '/v1/status', '/v1/trace', '/metrics'] as const;

/**
 * The status API as a fastify app that does not listen yet: the agent wiring calls listen(),
 * tests call inject(). Errors are JSON with a stable code; unknown paths are 404, a known path
 * with another method 405.
 */
export function buildApi(deps: ApiDeps): FastifyInstance {
  const log = deps.logger.child({ component: 'api' });
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // Prometheus scrapes every few seconds: one log line per request would drown the rest.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    frameworkErrors,
  });

  app.get('/healthz', async (_req, reply) => {
    const live = deps.status.live();
    return reply.code(live ? 200 : 503).send({ live, state: deps.status.status().state });
  });
  app.get('/readyz', async (_req, reply) => {
    const s = deps.status.status();
    return reply.code(s.ready ? 200 : 503).send({ ready: s.ready, waitingFor: s.waitingFor, ...(s.reason === undefined ? {} : { reason: s.reason }) });
  });
  app.get('/v1/status', async () => deps.status.status());
  const trace = deps.trace;
  if (trace) {
    app.get('/v1/trace', async (req, reply) => {
      const { dst, from } = req.query as Record<string, unknown>;
      if (typeof dst !== 'string' || dst === '') return sendError(reply, 400, 'TWILL_ERR_API_BAD_REQUEST', 'trace: give the destination as ?dst=<IPv4 address>');
      try {
        return await trace(dst, typeof from === 'string' && from !== '' ? from : undefined);
      } catch (err) {
        if (isTwillError(err, 'TWILL_ERR_API_BAD_REQUEST')) return sendError(reply, 400, 'TWILL_ERR_API_BAD_REQUEST', err.message);
        throw err;
      }
    });
  }
  app.get('/metrics', async (_req, reply) => {
    const text = await deps.metrics.metrics();
    return reply.type(deps.metrics.contentType).send(text);
  });

  replyWithCodedErrors(app, { paths: API_PATHS, log, failure: 'status API request failed' });
  return app;
}
