import {
  EtcdAuthenticationFailedError,
  EtcdLeaseInvalidError,
  EtcdUserNotFoundError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCUnavailableError,
  isRecoverableError,
  ClientClosedError,
} from 'etcd3';
import { isTwillError, TwillError } from '../errors.js';

/** The one boundary where etcd client errors become TwillErrors (and so transient or not). */
export function fromEtcd(err: unknown, what: string): TwillError {
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
    e instanceof GRPCUnavailableError || e instanceof GRPCDeadlineExceededError || e instanceof ClientClosedError || isRecoverableError(e);
  if (unreachable) {
    return new TwillError('TWILL_ERR_ETCD_UNAVAILABLE', `${what}: etcd is unreachable (${e.message})`, { cause: e });
  }
  return new TwillError('TWILL_ERR_ETCD_REQUEST', `${what}: ${e.message}`, { cause: e });
}
