import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Registry } from 'prom-client';
import { isTwillError, type ErrorCode } from '../errors.js';
import type { PathTrace } from '../trace/path.js';
import type { Logger } from '../log.js';
import type { StatusSource } from '../status/types.js';

export interface ApiDeps {
  readonly status: StatusSource;
  /** `GET /v1/trace?dst=IP[&from=IP]`: the way a packet takes from this node (absent: 404). */
  readonly trace?: (dst: string, from?: string) => Promise<PathTrace>;
  readonly metrics: Registry;
  readonly logger: Logger;
}

/** Every path the API serves; all are GET (HEAD comes with it). */
export const API_PATHS = ['/healthz', '/readyz', '/v1/status', '/v1/trace', '/metrics'] as const;

/** The body of every error answer. */
export interface ApiErrorBody {
  readonly statusCode: number;
  readonly code: ErrorCode;
  readonly message: string;
}

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
    frameworkErrors: (err, _req, reply) => void sendError(reply, 400, 'TWILL_ERR_API_BAD_REQUEST', err.message),
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

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '';
    if ((API_PATHS as readonly string[]).includes(path)) {
      void reply.header('allow', 'GET, HEAD');
      return sendError(reply, 405, 'TWILL_ERR_API_METHOD', `${req.method} is not allowed on ${path}; use GET`);
    }
    return sendError(reply, 404, 'TWILL_ERR_API_NOT_FOUND', `no such path ${path}; try ${API_PATHS.join(', ')}`);
  });
  app.setErrorHandler((err: FastifyError, _req, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) log.error({ err }, 'status API request failed');
    return sendError(reply, status, 'TWILL_ERR_API_BAD_REQUEST', err.message);
  });
  return app;
}

function sendError(reply: FastifyReply, statusCode: number, code: ErrorCode, message: string): FastifyReply {
  const body: ApiErrorBody = { statusCode, code, message };
  return reply.code(statusCode).type('application/json; charset=utf-8').send(body);
}
