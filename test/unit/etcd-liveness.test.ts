import { Metadata, type Interceptor, type InterceptorOptions } from '@grpc/grpc-js';
import { BrokenCircuitError } from 'cockatiel';
import type { CallContext } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { fromEtcd } from '../../src/subnet/etcd-errors.js';
import { KEEPALIVE, livenessOptions, requireLeader, watchBackoff } from '../../src/subnet/etcd-liveness.js';

/** What an interceptor's next call gives it (grpc-js does not export the interface by name). */
type InterceptingCallInterface = ReturnType<Parameters<Interceptor>[1]>;

/** The call below the interceptor: it records the metadata the call starts with. */
function bottomCall(seen: Metadata[]): InterceptingCallInterface {
  const nothing = () => undefined;
  return {
    start: (metadata: Metadata) => void seen.push(metadata),
    cancelWithStatus: nothing,
    getPeer: () => 'peer',
    sendMessageWithContext: nothing,
    sendMessage: nothing,
    startRead: nothing,
    halfClose: nothing,
    getAuthContext: () => null,
  } as unknown as InterceptingCallInterface;
}

describe('etcd client liveness options', () => {
  it("require-leader adds etcd's hasleader metadata to the call, leaving the client's shared metadata alone", () => {
    const seen: Metadata[] = [];
    const call = requireLeader({} as InterceptorOptions, () => bottomCall(seen));
    const shared = new Metadata();
    shared.set('token', 'auth-token');
    call.start(shared, {});
    expect(seen).toHaveLength(1);
    expect(seen[0]!.get('hasleader')).toEqual(['true']);
    expect(seen[0]!.get('token')).toEqual(['auth-token']);
    expect(shared.get('hasleader')).toEqual([]);
  });

  it('gives the watch stream require-leader, unary calls a deadline, every connection keepalive', () => {
    const opts = livenessOptions(5000);
    const factory = opts.defaultCallOptions as (ctx: CallContext) => { deadline?: number; interceptors?: unknown[] };
    expect(factory({ service: 'Watch', method: 'watch', isStream: true } as CallContext)).toEqual({ interceptors: [requireLeader] });
    expect(factory({ service: 'Lease', method: 'leaseKeepAlive', isStream: true } as CallContext)).toEqual({});
    const before = Date.now();
    const unary = factory({ service: 'KV', method: 'range', isStream: false } as CallContext);
    expect(unary.interceptors).toBeUndefined();
    expect(unary.deadline! - before).toBeGreaterThanOrEqual(5000);
    expect(unary.deadline! - before).toBeLessThan(6000);
    expect(opts.grpcOptions).toEqual({ 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000 });
    expect(KEEPALIVE['grpc.keepalive_time_ms']).toBeGreaterThanOrEqual(5000); // etcd's --grpc-keepalive-min-time
  });

  it('reconnects a broken watch after 0, 250, 500, 1000 ms, then every 2 s', () => {
    const durations: number[] = [];
    let b = watchBackoff();
    for (let i = 0; i < 7; i++) {
      durations.push(b.duration);
      b = b.next(undefined);
    }
    expect(durations).toEqual([0, 250, 500, 1000, 2000, 2000, 2000]);
  });

  it("counts the client's open circuit breaker as an unreachable etcd (transient), not as a refusal", () => {
    expect(fromEtcd(new BrokenCircuitError(), 'renew etcd lease').code).toBe('TWILL_ERR_ETCD_UNAVAILABLE');
    expect(fromEtcd(new Error('something else'), 'renew etcd lease').code).toBe('TWILL_ERR_ETCD_REQUEST');
  });
});
