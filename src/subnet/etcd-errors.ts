import {
  EtcdAuthenticationFailedError,
  EtcdLeaseInvalidError,
  EtcdUserNotFoundError,
  EtcdPermissionDeniedError,
  EtcdWatchStreamEnded,
  GRPCDeadlineExceededError,
  GRPCUnavailableError,
  isRecoverableError,
  ClientClosedError,
} from 'etcd3';
import { isTwillError, TwillError, type ErrorCode } from '../errors.js';

/**
 * Where an etcd error came from, which decides what an error etcd gave no reason for means:
 * - `call`: a unary RPC; an unexplained refusal is TWILL_ERR_ETCD_REQUEST (permanent).
 * - `watch-stream`: the watch stream broke ('disconnected'); the etcd client reconnects it on
 *   its own, so unless etcd named a refusal (auth, permission) it is TWILL_ERR_ETCD_UNAVAILABLE.
 * - `watch-cancel`: etcd cancelled a watch ('error', or a watch that could not be created), e.g.
 *   its start revision was compacted: TWILL_ERR_ETCD_WATCH_CANCELLED, answered by a re-list.
 */
export type EtcdErrorSource = 'call' | 'watch-stream' | 'watch-cancel';

const UNEXPLAINED: Record<EtcdErrorSource, ErrorCode> = {
  call: 'TWILL_ERR_ETCD_REQUEST',
  'watch-stream': 'TWILL_ERR_ETCD_UNAVAILABLE',
  'watch-cancel': 'TWILL_ERR_ETCD_WATCH_CANCELLED',
};

/** The one boundary where etcd client errors become TwillErrors (and so transient or not). */
export function fromEtcd(err: unknown, what: string, source: EtcdErrorSource = 'call'): TwillError {
  if (isTwillError(err)) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  if (e instanceof EtcdLeaseInvalidError) {
    return new TwillError('TWILL_ERR_LEASE_LOST', `${what}: the etcd lease is gone`, { cause: e });
  }
  if (e instanceof EtcdAuthenticationFailedError || e instanceof EtcdUserNotFoundError) {
    return new TwillError('TWILL_ERR_ETCD_AUTH', `${what}: etcd refused the user name or password`, { cause: e });
  }
  if (e instanceof EtcdPermissionDeniedError) {
    return new TwillError('TWILL_ERR_ETCD_REQUEST', `${what}: permission denied by etcd`, { cause: e });
  }
  const unreachable =
    isBrokenCircuit(e) ||
    e instanceof GRPCUnavailableError ||
    e instanceof GRPCDeadlineExceededError ||
    e instanceof ClientClosedError ||
    e instanceof EtcdWatchStreamEnded ||
    isRecoverableError(e);
  if (unreachable) {
    return new TwillError('TWILL_ERR_ETCD_UNAVAILABLE', `${what}: etcd is unreachable (${e.message})`, { cause: e });
  }
  return new TwillError(UNEXPLAINED[source], `${what}: ${e.message}`, { cause: e });
}

/**
 * The client's circuit breaker (cockatiel's BrokenCircuitError, which marks itself with this
 * property): after consecutive failures it stops calling that endpoint for a while and fails at
 * once. It is an unreachable etcd, not a refusal.
 */
function isBrokenCircuit(e: Error): boolean {
  return (e as { isBrokenCircuitError?: unknown }).isBrokenCircuitError === true;
}
