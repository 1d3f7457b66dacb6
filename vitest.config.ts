import { defineConfig } from 'vitest/config';

// Three layers: pure unit tests (no root, no daemons), tests against a real etcd on loopback,
// and end-to-end tests in network namespaces (root); plus `deploy` (the systemd unit and the
// Kubernetes manifests checked by their real validators). `npm test` runs these four.
// `docker` (the image and the compose lab on a real Docker engine, minutes) runs only with
// TWILL_DOCKER_TESTS=1: scripts/test.sh runs it as its own stage after setting up dockerd.
const docker = { test: { name: 'docker', include: ['test/docker/**/*.test.ts'], testTimeout: 900_000, hookTimeout: 1_200_000, fileParallelism: false } };

export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { test: { name: 'etcd', include: ['test/etcd/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 60_000 } },
      { test: { name: 'deploy', include: ['test/deploy/**/*.test.ts'], testTimeout: 60_000 } },
      ...(process.env.TWILL_DOCKER_TESTS === '1' ? [docker] : []),
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
