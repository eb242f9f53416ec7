import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { raftKvFailoverDemo } from '../src/raft-kv-failover.js'
import { bundleCli } from './bundle.js'

let bundle: Awaited<ReturnType<typeof bundleCli>>
beforeAll(async () => {
  bundle = await bundleCli(join(import.meta.dirname, '../../raft-kv/src/cli.ts'))
})
afterAll(() => bundle.remove())

describe('raftKvFailoverDemo', () => {
  it('survives a SIGKILLed leader: a new leader, every write readable, the old leader catches up', async () => {
    const lines: string[] = []
    const report = await raftKvFailoverDemo((l) => lines.push(l), { cli: bundle.cli, keys: 40 })
    expect(report.secondLeader).not.toBe(report.firstLeader)
    expect(report.keysReadBack).toBe(report.keysWritten)
    expect(report.restartedCaughtUp).toBe(true)
  }, 120_000)
})
