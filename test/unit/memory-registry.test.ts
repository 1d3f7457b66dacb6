import { ManualClock } from '../support/manual-clock.js';
import { MemoryRegistry } from '../support/memory-registry.js';
import { registryContract } from '../support/registry-contract.js';

registryContract('in memory', async () => {
  const clock = new ManualClock();
  const prefix = '/coreos.com/network';
  const registry = new MemoryRegistry({ prefix, clock });
  return {
    registry,
    prefix,
    putRaw: async (key, value) => registry.putRaw(key, value),
    putRawMany: async (entries) => registry.putRawMany(entries),
    compact: async (revision) => registry.compact(revision),
    advance: async (seconds) => clock.advance(seconds),
    close: async () => registry.close(),
  };
});
