import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { raftKvFailoverDemo } from '../src/raft-kv-failover.js'

// The members run as real processes: bundle raft-kv's CLI from source, so the test needs no prior build.
const dir = mkdtempSync(join(tmpdir(), 'swarmkit-demo-test-'))
const cli = join(dir, 'raft-kv.mjs')

beforeAll(async () => {
  await build({
    entryPoints: [join(import.meta.dirname, '../../raft-kv/src/cli.ts')],
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

describe('raftKvFailoverDemo', () => {
  it('survives a SIGKILLed leader: a new leader, every write readable, the old leader catches up', async () => {
    const lines: string[] = []
    const report = await raftKvFailoverDemo((l) => lines.push(l), { cli, keys: 40 })
    expect(report.secondLeader).not.toBe(report.firstLeader)
    expect(report.keysReadBack).toBe(report.keysWritten)
    expect(report.restartedCaughtUp).toBe(true)
  }, 120_000)
})
