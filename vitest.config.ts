import { defineConfig } from 'vitest/config';

// Three layers: pure unit tests (no root, no daemons), tests against a real etcd on loopback,
// and end-to-end tests in network namespaces (root). `npm test` runs all three.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { test: { name: 'etcd', include: ['test/etcd/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 60_000 } },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 240_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
