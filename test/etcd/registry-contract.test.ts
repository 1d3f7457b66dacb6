import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll } from 'vitest';
import { EtcdRegistry } from '../../src/subnet/etcd-registry.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { registryContract } from '../support/registry-contract.js';

let etcd: EtcdServer;
let raw: Etcd3;
let n = 0;

beforeAll(async () => {
  etcd = await startEtcd();
  raw = new Etcd3({ hosts: etcd.endpoint });
});
afterAll(async () => {
  raw?.close();
  await etcd?.stop();
});

// The same cases as test/unit/memory-registry.test.ts, against Debian's etcd: they keep the
// in-memory registry that the policy and agent tests run on honest.
registryContract('etcd', async () => {
  const prefix = `/contract${++n}/network`;
  const registry = new EtcdRegistry({ endpoints: [etcd.endpoint], prefix });
  return {
    registry,
    prefix,
    putRaw: async (key, value) => void (await raw.put(key).value(value)),
    putRawMany: async (entries) => {
      const puts = entries.map(([key, value]) => raw.put(key).value(value));
      await raw.if(`${prefix}/nothing`, 'Version', '==', 0).then(...puts).commit();
    },
    compact: async (revision) => void (await raw.kv.compact({ revision, physical: true })),
    advance: (seconds) => new Promise((r) => setTimeout(r, seconds * 1000)),
    close: async () => registry.close(),
  };
});
