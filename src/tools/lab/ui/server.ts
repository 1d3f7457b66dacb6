import { readFile } from 'node:fs/promises';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import { frameworkErrors, replyWithCodedErrors, sendError } from '../../../api/reply.js';
import { isTwillError, type ErrorCode } from '../../../errors.js';
import type { Logger } from '../../../log.js';
import type { AgentApiView } from '../agent-api.js';
import type { LabTrace } from '../trace/types.js';
import { layoutLab, placeHops } from './picture.js';
import { checkTraceEnds, type LabView } from './view.js';

export interface LabUiDeps {
  /** The lab as it is now (read again for every request: `restart-agent` may have changed it). */
  readonly lab: () => Promise<LabView>;
  readonly agents: () => Promise<AgentApiView[]>;
  /** `from` a pod id; `to` a pod id, a host id, "out" or an IPv4 address (checked before the call). */
  readonly trace: (from: string, to: string) => Promise<LabTrace>;
  readonly logger: Logger;
}

/** The page's files: tsc compiles src/ only, so they sit at the repo root, found from src/ and dist/ alike. */
export const ASSET_DIR = new URL('../../../../assets/lab-ui/', import.meta.url);
const ASSETS = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
} as const;

export const LAB_UI_PATHS = [...Object.keys(ASSETS), '/api/lab', '/api/agents', '/api/trace'] as const;

/** Lab errors a request can meet, and how they are answered; any other error is a logged 500. */
const ANSWERS: Partial<Record<ErrorCode, number>> = { TWILL_ERR_OPTION_INVALID: 400, TWILL_ERR_LAB_STATE: 503, TWILL_ERR_LAB_NOT_ROOT: 503, TWILL_ERR_KERNEL_NOT_FOUND: 503 };

/** Names that mean this machine's loopback: the Host header of anything else is refused (DNS rebinding). */
const LOOPBACK_HOST = /^(?:127\.0\.0\.1|localhost|\[::1\])(?::\d+)?$/;

/**
 * The lab page as a fastify app that does not listen yet (`lab ui` listens on 127.0.0.1; tests
 * call inject()): the page, the lab's picture, every agent's state and a trace with its hops
 * placed on the picture. Errors are JSON with a stable code, as the status API's.
 */
export function buildLabUi(deps: LabUiDeps): FastifyInstance {
  const log = deps.logger.child({ component: 'lab-ui' });
  const app = Fastify({ loggerInstance: log as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), return503OnClosing: true, frameworkErrors });

  app.addHook('onRequest', async (req, reply) => {
    if (!LOOPBACK_HOST.test(req.headers.host ?? '')) return sendError(reply, 403, 'TWILL_ERR_API_BAD_REQUEST', `the lab page answers only on loopback (Host 127.0.0.1 or localhost), not "${req.headers.host ?? ''}"`);
  });
  for (const [path, asset] of Object.entries(ASSETS)) {
    app.get(path, async (_req, reply) => reply.type(asset.type).header('cache-control', 'no-store').send(await readFile(new URL(asset.file, ASSET_DIR))));
  }
  app.get('/api/lab', async (_req, reply) =>
    answer(reply, async () => {
      const lab = await deps.lab();
      return { lab, picture: layoutLab(lab) };
    }),
  );
  app.get('/api/agents', async (_req, reply) => answer(reply, async () => ({ agents: await deps.agents() })));
  const trace = oneAtATime(deps.trace);
  app.get('/api/trace', async (req, reply) =>
    answer(reply, async () => {
      const { from, to } = req.query as Record<string, unknown>;
      const lab = await deps.lab();
      const ends = checkTraceEnds(lab, from, to);
      if (!ends.ok) return sendError(reply, 400, 'TWILL_ERR_OPTION_INVALID', ends.why);
      const result = await trace(ends.from, ends.to);
      return { trace: result, marks: placeHops(layoutLab(lab), result) };
    }),
  );

  replyWithCodedErrors(app, { paths: LAB_UI_PATHS, log, failure: 'lab page request failed' });
  return app;
}

/** A lab error (lab not up, a bad pod) is answered with its own code; anything else goes to the error handler. */
async function answer<T>(reply: FastifyReply, fn: () => Promise<T>): Promise<T | FastifyReply> {
  try {
    return await fn();
  } catch (err) {
    const status = isTwillError(err) ? ANSWERS[err.code] : undefined;
    if (status === undefined || !isTwillError(err)) throw err;
    return sendError(reply, status, err.code, err.message);
  }
}

/** Traces run one after another: two at once could see each other's packets in their captures. */
function oneAtATime<A extends unknown[], T>(fn: (...args: A) => Promise<T>): (...args: A) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return (...args) => {
    const next = last.then(() => fn(...args));
    last = next.catch(() => undefined);
    return next;
  };
}
