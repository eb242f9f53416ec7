import { availableParallelism } from 'node:os'
import { defineConfig } from 'vitest/config'
import { BaseSequencer, type TestSpecification } from 'vitest/node'

const packages = ['transport', 'raft', 'store', 'pki', 'scheduler', 'overlay']

// Most files wait on I/O (dockerd, the kernel, child processes, timeouts): two at a time even on 2 cores
// (vitest's default is one fewer than the cores, 1 on CI's 2-core machine, which ran every file in turn).
// SWARMKIT_TEST_WORKERS=N sets it (1: one file at a time, as before).
const PARALLEL = Number(process.env.SWARMKIT_TEST_WORKERS) || Math.max(2, availableParallelism())

// Files that run by themselves, one after the other, after the parallel files and before the chaos suite
// (sequence.groupOrder 1, maxWorkers 1), by project. Two kinds:
// - what another file's CPU would upset: stall and time-slice figures (a busy wait, read against the clock),
//   an inline write that must stay under 40 ms;
// - the executor tests on the shared private dockerd whose nodes give their containers a bridge in the root
//   namespace on 169.254.N.0/24, N from a hash of the node ID (1 of 250): two such files at a time could
//   pick one subnet twice. (The namespace hosts of overlay-hosts* and the overlay package's labs put
//   everything under a random tag in namespaces of their own: they run in parallel.)
const alone: Record<string, string[]> = {
  raft: ['test/file-storage-inline.test.ts'],
  scheduler: ['test/time-slices.test.ts', 'test/rolling-update-scale.test.ts'],
  examples: [
    'examples/cluster/test/loop-stalls.test.ts',
    'examples/cluster/test/leader-stall.test.ts',
    'examples/cluster/test/cli-executor.test.ts',
    'examples/cluster/test/docker-engine-down.test.ts',
    'examples/cluster/test/docker-executor.test.ts',
    'examples/cluster/test/docker-orchestration.test.ts',
    'examples/cluster/test/docker-walkthrough.test.ts',
  ],
}

// The longest files (tens of seconds each), longest first: they start first, so that no long file is left
// running by itself at the end of its group. Vitest orders by the durations it cached from the last run, but
// CI starts from a clean clone, without that cache (it would order by file size).
const longest = [
  'examples/cluster/test/chaos/full-disk.test.ts',
  'examples/cluster/test/overlay-hosts-lifecycle.test.ts',
  'examples/cluster/test/overlay-hosts.test.ts',
  'packages/raft/test/file-storage-crash.slow.test.ts',
  'packages/overlay/test/swarm-networking.integration.test.ts',
  'examples/cluster/test/chaos/faults.test.ts',
  'examples/cluster/test/chaos/nemesis.test.ts',
  'packages/overlay/test/dataplane.integration.test.ts',
  'packages/raft/test/sim/durable.slow.test.ts',
  'examples/cluster/test/ui.test.ts',
  'examples/cluster/test/events.test.ts',
]

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files)
    const rank = (f: TestSpecification) => {
      const i = longest.findIndex((l) => f.moduleId.endsWith(`/${l}`))
      return i < 0 ? longest.length : i
    }
    const group = (f: TestSpecification) => f.project.config.sequence.groupOrder
    return sorted
      .map((f, i) => ({ f, i }))
      .sort((a, b) => group(a.f) - group(b.f) || rank(a.f) - rank(b.f) || a.i - b.i)
      .map(({ f }) => f)
  }
}

export default defineConfig({
  ssr: { resolve: { conditions: ['@swarmkit/source'] } },
  resolve: { conditions: ['@swarmkit/source'] },
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    sequence: { sequencer: LongestFirst },
    projects: [
      ...packages.flatMap((name) => [
        {
          extends: true as const,
          test: {
            name,
            root: `packages/${name}`,
            include: ['test/**/*.test.ts'],
            exclude: alone[name] ?? [],
            maxWorkers: PARALLEL,
          },
        },
        ...(alone[name] ? [aloneProject(name, { root: `packages/${name}` })] : []),
      ]),
      {
        extends: true as const,
        test: { name: 'workspace', include: ['test/**/*.test.ts'], maxWorkers: PARALLEL },
      },
      {
        extends: true as const,
        test: {
          name: 'examples',
          include: ['examples/*/test/**/*.test.ts'],
          exclude: ['examples/cluster/test/chaos/**', ...alone.examples!],
          maxWorkers: PARALLEL,
        },
      },
      aloneProject('examples'),
      {
        // The chaos suite runs real manager processes under load and faults: after every other project
        // (groupOrder), two files at a time, so that it neither slows the others nor is slowed by them.
        extends: true as const,
        test: {
          name: 'chaos',
          include: ['examples/cluster/test/chaos/**/*.test.ts'],
          // Fails a file that leaves a manager process running, and kills it (process-guard.ts).
          setupFiles: ['examples/cluster/test/chaos/no-leftovers.ts'],
          sequence: { groupOrder: 2 },
          maxWorkers: 2,
          testTimeout: 300_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
})

/** The project of `name`'s files in `alone`: one at a time, nothing else running. */
function aloneProject(name: string, options: { root?: string } = {}) {
  return {
    extends: true as const,
    test: {
      name: `${name}-alone`,
      ...options,
      include: alone[name]!,
      sequence: { groupOrder: 1 },
      maxWorkers: 1,
    },
  }
}
