import { EventEmitter } from 'node:events';
import { EtcdAuthenticationFailedError, EtcdError, EtcdPermissionDeniedError, EtcdWatchStreamEnded, GRPCUnavailableError, type Watcher } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { isTransient, type TwillError } from '../../src/errors.js';
import { fromEtcd } from '../../src/subnet/etcd-errors.js';
import { wireWatcher } from '../../src/subnet/etcd-watch.js';
import type { LeaseWatchHandlers } from '../../src/subnet/registry.js';

/** An etcd3 Watcher is an EventEmitter: this one lets the test emit what etcd3 would. */
function fakeWatch() {
  const emitter = new EventEmitter();
  const resets: TwillError[] = [];
  const connections: [boolean, TwillError | undefined][] = [];
  let ended = false;
  const handlers: LeaseWatchHandlers = {
    onBatch: () => undefined,
    onReset: (err) => resets.push(err),
    onConnection: (connected, err) => connections.push([connected, err]),
  };
  wireWatcher(emitter as unknown as Watcher, '/coreos.com/network', handlers, () => (ended = true));
  return { emitter, resets, connections, ended: () => ended };
}

describe('the etcd watch boundary', () => {
  it("translates a watcher 'error' (etcd cancelled the watch) through fromEtcd", () => {
    const w = fakeWatch();
    w.emitter.emit('error', new EtcdError('Watcher canceled: mvcc: required revision has been compacted'));
    w.emitter.emit('error', new EtcdPermissionDeniedError('etcdserver: permission denied'));
    expect(w.ended()).toBe(true);
    expect(w.resets.map((e) => [e.code, isTransient(e)])).toEqual([
      ['TWILL_ERR_ETCD_WATCH_CANCELLED', true], // re-list and watch again
      ['TWILL_ERR_ETCD_REQUEST', false], // re-listing cannot fix a permission
    ]);
    expect(w.resets[0]?.cause).toBeInstanceOf(EtcdError);
  });

  it("translates a watcher 'disconnected' (the stream broke) through fromEtcd", () => {
    const w = fakeWatch();
    w.emitter.emit('disconnected', new GRPCUnavailableError('14 UNAVAILABLE: No connection established'));
    w.emitter.emit('disconnected', new EtcdWatchStreamEnded());
    w.emitter.emit('disconnected', new Error('something the client had no class for'));
    w.emitter.emit('disconnected', new EtcdAuthenticationFailedError('etcdserver: authentication failed, invalid user ID or password'));
    w.emitter.emit('connected', {});
    expect(w.connections.map(([c, e]) => [c, e?.code, e && isTransient(e)])).toEqual([
      [false, 'TWILL_ERR_ETCD_UNAVAILABLE', true],
      [false, 'TWILL_ERR_ETCD_UNAVAILABLE', true],
      [false, 'TWILL_ERR_ETCD_UNAVAILABLE', true], // the client reconnects a broken stream by itself
      [false, 'TWILL_ERR_ETCD_AUTH', false],
      [true, undefined, undefined],
    ]);
    expect(w.ended()).toBe(false);
  });

  it('leaves an unexplained refusal of a call permanent, and a TwillError as it is', () => {
    expect(fromEtcd(new EtcdError('etcdserver: request is too large'), 'put').code).toBe('TWILL_ERR_ETCD_REQUEST');
    const own = fromEtcd(new EtcdError('x'), 'put');
    expect(fromEtcd(own, 'again')).toBe(own);
  });
});
