import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dockerClusterDemo } from '../src/docker-cluster.js'

// The nodes run as real processes: bundle the cluster's CLI from source, so the test needs no prior build.
const dir = mkdtempSync(join(tmpdir(), 'swarmkit-demo-cluster-test-'))
const cli = join(dir, 'cluster.mjs')

beforeAll(async () => {
  await build({
    entryPoints: [join(import.meta.dirname, '../../cluster/src/cli.ts')],
    outfile: cli,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['@swarmkit/source'],
    logLevel: 'warning',
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
  })
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('dockerClusterDemo', () => {
  it('lets the docker CLI init, join, create and scale a service over two nodes', async () => {
    const lines: string[] = []
    const report = await dockerClusterDemo((l) => lines.push(l), { cli, replicas: 4 })
    expect(report.nodes).toMatch(/manager1 +Ready +Active +Leader/)
    expect(report.nodes).toMatch(/worker1 +Ready +Active/)
    expect(report.services).toMatch(/web +replicated +4\/4/)
    expect(report.runningTasks).toBe(4)
    expect(report.nodesWithTasks).toBe(2)
  }, 120_000)
})
