import type { FastifyInstance } from 'fastify';
import { TwillError } from '../errors.js';

export interface ListenTarget {
  readonly host: string;
  readonly port: number;
  /** What listens, as the errors name it ("status API", "lab page"). */
  readonly what: string;
  /** Follows "is already in use" directly: how to pick another address. */
  readonly inUseHint: string;
}

/** Listens, or closes the app and throws a coded error: TWILL_ERR_API_ADDR_IN_USE, or TWILL_ERR_API_ADDR with the errno. */
export async function listenOrExplain(app: FastifyInstance, t: ListenTarget, addr: string): Promise<void> {
  try {
    await app.listen({ host: t.host, port: t.port });
  } catch (err) {
    await app.close().catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new TwillError('TWILL_ERR_API_ADDR_IN_USE', `${t.what}: ${addr} is already in use${t.inUseHint}`, { cause: err, details: { addr } });
    throw new TwillError('TWILL_ERR_API_ADDR', `${t.what}: cannot listen on ${addr}: ${(err as Error).message}`, { cause: err, details: { addr, errno: code } });
  }
}
