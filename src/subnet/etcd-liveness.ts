import { InterceptingCall, type Interceptor } from '@grpc/grpc-js';
import type { IOptions } from 'etcd3';

type WatchBackoff = NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>;

/**
 * gRPC keepalive on every connection to etcd: a ping after 10 s without traffic, and the
 * connection is dropped when no answer comes within 5 s, so a watch on a frozen or vanished
 * member breaks (and the client reconnects it, to another endpoint if there is one) instead of
 * waiting on TCP for many minutes. etcd refuses pings more often than every 5 s
 * (--grpc-keepalive-min-time), so 10 s stays clear of that.
 */
export const KEEPALIVE = Object.freeze({ 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000 });

/**
 * etcd's require-leader (clientv3's WithRequireLeader): the metadata `hasleader: true` on a
 * stream makes etcd refuse it, and cancel it once open, while the member has no leader, i.e.
 * has lost its quorum. Without it a watch on such a member stays open and silent for as long
 * as that lasts. The etcd3 client takes no metadata per call, but it hands its call options
 * to grpc-js (the same grpc-js, a dependency of ours too), and a grpc-js interceptor may add
 * metadata to the call it starts.
 */
export const requireLeader: Interceptor = (options, nextCall) =>
  new InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      const withLeader = metadata.clone(); // the client shares one metadata (its auth token) between calls
      withLeader.set('hasleader', 'true');
      next(withLeader, listener);
    },
  });

/**
 * How long the client waits before reconnecting a broken watch stream: doubling from 250 ms up
 * to 2 s (the client's default goes to 30 s, which would leave the lease watch down for that
 * long after etcd is back).
 */
export function watchBackoff(ms = 0): WatchBackoff {
  return { duration: ms, next: () => watchBackoff(Math.min(Math.max(ms * 2, 250), 2000)) };
}

/** The etcd3 client options that make contact with etcd fail fast and the watch honest. */
export function livenessOptions(callTimeoutMs: number): Pick<IOptions, 'grpcOptions' | 'faultHandling' | 'defaultCallOptions'> {
  return {
    grpcOptions: { ...KEEPALIVE },
    faultHandling: { watchBackoff: watchBackoff() },
    // Unary calls get a deadline; the watch stream gets require-leader (the lease keepalive
    // stream has its own timeout in the registry).
    defaultCallOptions: (ctx) => (!ctx.isStream ? { deadline: Date.now() + callTimeoutMs } : ctx.service === 'Watch' ? { interceptors: [requireLeader] } : {}),
  };
}
