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
        test: { name: 'examples', include: ['examples/*/test/**/*.test.ts'] },
      },
    ],
  },
})
