import { defineConfig } from 'vitest/config'

const packages = ['transport', 'raft', 'store', 'pki', 'scheduler', 'overlay']

export default defineConfig({
  ssr: { resolve: { conditions: ['@swarmkit/source'] } },
  resolve: { conditions: ['@swarmkit/source'] },
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      ...packages.map((name) => ({
        extends: true as const,
        test: { name, root: `packages/${name}`, include: ['test/**/*.test.ts'] },
      })),
      {
        extends: true as const,
        test: { name: 'workspace', include: ['test/**/*.test.ts'] },
      },
      {
        extends: true as const,
        test: {
          name: 'examples',
          include: ['examples/*/test/**/*.test.ts'],
          exclude: ['examples/cluster/test/chaos/**'],
        },
      },
      {
        // The chaos suite runs real manager processes under load and faults: after every other project
        // (groupOrder), two files at a time, so that it neither slows the others nor is slowed by them.
        extends: true as const,
        test: {
          name: 'chaos',
          include: ['examples/cluster/test/chaos/**/*.test.ts'],
          // Fails a file that leaves a manager process running, and kills it (process-guard.ts).
          setupFiles: ['examples/cluster/test/chaos/no-leftovers.ts'],
          sequence: { groupOrder: 1 },
          maxWorkers: 2,
          testTimeout: 300_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
})
