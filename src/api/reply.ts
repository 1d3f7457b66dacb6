import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorCode } from '../errors.js';

/**
 * The error answers every twill HTTP server gives (the agent's status API, the lab page): a JSON
 * body with a stable code; an unknown path is 404, a known path with another method 405.
 */
export interface ApiErrorBody {
  readonly statusCode: number;
  readonly code: ErrorCode;
  readonly message: string;
}

export function sendError(reply: FastifyReply, statusCode: number, code: ErrorCode, message: string): FastifyReply {
  const body: ApiErrorBody = { statusCode, code, message };
  return reply.code(statusCode).type('application/json; charset=utf-8').send(body);
}

/** Fastify's `frameworkErrors` option: a request it cannot read (bad URL, bad header) is a coded 400. */
export function frameworkErrors(err: Error, _req: FastifyRequest, reply: FastifyReply): void {
  void sendError(reply, 400, 'TWILL_ERR_API_BAD_REQUEST', err.message);
}

export interface ErrorReplies {
  /** Every path served, all GET (HEAD comes with it): another method there is 405. */
  readonly paths: readonly string[];
  readonly log: FastifyBaseLogger;
  /** The log line of a 5xx answer: "status API request failed". */
  readonly failure: string;
}

/** Installs the 404/405 answers and the error handler (a thrown error's status, or 500, logged). */
export function replyWithCodedErrors(app: FastifyInstance, opts: ErrorReplies): void {
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '';
    if (opts.paths.includes(path)) {
      void reply.header('allow', 'GET, HEAD');
      return sendError(reply, 405, 'TWILL_ERR_API_METHOD', `${req.method} is not allowed on ${path}; use GET`);
    }
    return sendError(reply, 404, 'TWILL_ERR_API_NOT_FOUND', `no such path ${path}; try ${opts.paths.join(', ')}`);
  });
  app.setErrorHandler((err: FastifyError, _req, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) opts.log.error({ err }, opts.failure);
    return sendError(reply, status, 'TWILL_ERR_API_BAD_REQUEST', err.message);
  });
}
