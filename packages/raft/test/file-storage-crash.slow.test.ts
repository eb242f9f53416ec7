// Crash consistency of FileLogStorage with real processes: a child appends, truncates, snapshots and compacts
// under load from six concurrent writers and is killed with SIGKILL at seeded random points (some before it has
// even opened the log). After each kill the parent opens the directory and checks that the log is exactly the
// result of a prefix of the issued saves, possibly with the next save torn after some of its entries, and that
// the prefix includes every save that was acknowledged (snapshots of the node's own log may land later). Then the child starts again on the same directory.
//
// 200 kills by default (in four independent lanes), 2,000 with SWARMKIT_SLOW=1.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mulberry32 } from '../../../test/support/mulberry32.js'
import { FileLogStorage } from '../src/index.js'
import { candidates, describeState, emptyModel, matches, type Op } from './fixtures/crash-model.js'

const SLOW = process.env['SWARMKIT_SLOW'] === '1'
const LANES = 4
const KILLS_PER_LANE = SLOW ? 500 : 50
const root = mkdtempSync(join(tmpdir(), 'raft-crash-'))
const script = join(root, 'crash-writer.mjs')

beforeAll(async () => {
  await build({
    entryPoints: [join(import.meta.dirname, 'fixtures', 'crash-writer.ts')],
    outfile: script,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['@swarmkit/source'],
    logLevel: 'warning',
  })
})
afterAll(() => rmSync(root, { recursive: true, force: true }))

const prng = mulberry32

interface Run {
  ops: Op[]
  /** Positions (in `ops`) of the saves acknowledged. */
  acked: Set<number>
  stderr: string
  code: number | null
  signal: NodeJS.Signals | null
}

/** Runs the child until it has acknowledged `killAfter` saves (or at once when -1), then SIGKILLs it. */
function runChild(dir: string, seed: number, killAfter: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, dir, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] })
    const run: Run = { ops: [], acked: new Set(), stderr: '', code: null, signal: null }
    const pos = new Map<string, number>()
    let acks = 0
    let rest = ''
    const kill = () => child.kill('SIGKILL')
    if (killAfter < 0) kill()
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n')
      rest = lines.pop()!
      for (const line of lines) {
        if (line.startsWith('w ')) {
          const op = JSON.parse(line.slice(2)) as Op
          pos.set(op.id, run.ops.length)
          run.ops.push(op)
        } else if (line.startsWith('a ')) {
          const p = pos.get(line.slice(2))
          if (p === undefined) return reject(new Error(`ack of an unknown save: ${line}`))
          run.acked.add(p)
          if (++acks >= killAfter) kill()
        } else if (line === 'r' && killAfter === 0) kill()
      }
    })
    child.stderr.on('data', (d) => (run.stderr += d))
    child.on('error', reject)
    child.on('close', (code, signal) => {
      run.code = code
      run.signal = signal
      resolve(run)
    })
  })
}

async function lane(laneNo: number): Promise<{ kills: number; acked: number }> {
  const dir = join(root, `lane-${laneNo}`)
  const rnd = prng(0x5eed + laneNo)
  let model = emptyModel()
  let totalAcked = 0
  for (let round = 0; round < KILLS_PER_LANE; round++) {
    const seed = laneNo * 100_000 + round + 1
    const r = rnd()
    const killAfter = r < 0.05 ? -1 : r < 0.1 ? 0 : 1 + Math.floor(rnd() * 60)
    const run = await runChild(dir, seed, killAfter)
    if (run.signal !== 'SIGKILL') {
      throw new Error(`lane ${laneNo} round ${round}: child exited ${run.code}/${run.signal}: ${run.stderr}`)
    }
    totalAcked += run.acked.size
    const storage = await FileLogStorage.open(dir, {
      segmentBytes: 16 * 1024,
      nodeId: 'n1',
      clusterId: 'crash',
    })
    const state = await storage.load()
    await storage.close()
    const found = candidates(model, run.ops, run.acked).find((m) => matches(state, m))
    if (!found) {
      const info = { lane: laneNo, round, seed, acked: run.acked.size, issued: run.ops.length }
      if (process.env['CRASH_DEBUG']) {
        const { writeFileSync } = await import('node:fs')
        writeFileSync(
          process.env['CRASH_DEBUG'],
          JSON.stringify(
            {
              info,
              recovered: {
                snap: state.snapshot?.meta,
                hard: state.hardState,
                first: state.entries[0]?.index,
                last: state.entries.at(-1)?.index,
              },
              model: { snap: model.snap, hard: model.hard, last: model.entries.at(-1) },
              ops: run.ops.map((o, k) => ({ ...o, acked: run.acked.has(k) })),
            },
            null,
            0,
          ),
        )
      }
      throw new Error(
        `recovered state is not a prefix of the issued saves covering every acknowledged one: ${JSON.stringify(info)}\n` +
          `recovered: ${JSON.stringify(describeState(state)).slice(0, 2000)}\n` +
          `before: ${JSON.stringify(model).slice(0, 1500)}\nops: ${JSON.stringify(run.ops).slice(-3000)}`,
      )
    }
    model = found
  }
  return { kills: KILLS_PER_LANE, acked: totalAcked }
}

describe('FileLogStorage crash consistency', () => {
  it(
    `keeps every acknowledged save across ${LANES * KILLS_PER_LANE} SIGKILLs`,
    async () => {
      const results = await Promise.all(Array.from({ length: LANES }, (_, k) => lane(k)))
      const kills = results.reduce((n, r) => n + r.kills, 0)
      expect(kills).toBeGreaterThanOrEqual(200)
      // The runs did real work: many saves were acknowledged before the kills.
      expect(results.reduce((n, r) => n + r.acked, 0)).toBeGreaterThan(kills)
    },
    SLOW ? 1_800_000 : 240_000,
  )
})
