// Crash consistency of the encrypted log: a child process appends sealed entries, snapshots and compacts
// under concurrent saves and is SIGKILLed at seeded random points. After each kill the log must open with its
// keys (no record half-sealed, no CORRUPT), continue without gaps, hold every acknowledged entry, and every
// entry must decrypt to exactly what was written. 20 kills by default, 300 with SWARMKIT_SLOW=1.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileLogStorage } from '@swarmkit/raft'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleForNode } from '../../../test/support/bundle.js'
import { mulberry32 } from '../../../test/support/mulberry32.js'
import { KeyManager } from '../src/index.js'
import { checkEntry, snapshotData } from './fixtures/sealed-crash-data.js'

const SLOW = process.env.SWARMKIT_SLOW === '1'
const KILLS = SLOW ? 300 : 20
const root = mkdtempSync(join(tmpdir(), 'store-crash-'))
const script = join(root, 'writer.mjs')

beforeAll(async () => {
  await bundleForNode(join(import.meta.dirname, 'fixtures', 'sealed-crash-writer.ts'), script, {
    requireShim: true,
  })
})
afterAll(() => rmSync(root, { recursive: true, force: true }))

const prng = mulberry32

/** Runs the writer until it has acknowledged `acks` saves (0: kill as soon as it is ready), then SIGKILLs it. */
function runChild(dir: string, seed: number, acks: number): Promise<{ acked: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, dir, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let buf = ''
    let stderr = ''
    let acked = 0
    let count = 0
    let killed = false
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString()
      let nl = buf.indexOf('\n')
      while (nl >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        if (line.startsWith('a ')) {
          acked = Math.max(acked, Number(line.slice(2)))
          count++
        }
        if (!killed && (line === 'r' ? acks === 0 : count >= acks)) {
          killed = true
          child.kill('SIGKILL')
        }
        nl = buf.indexOf('\n')
      }
    })
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    child.on('error', reject)
    child.on('exit', () => resolve({ acked, stderr }))
  })
}

describe('encrypted FileLogStorage under SIGKILL', () => {
  it(`recovers a consistent, fully decryptable log after ${KILLS} kills`, async () => {
    const seed = Number(process.env.SWARMKIT_SEED ?? 20261125)
    const r = prng(seed)
    const dir = join(root, 'node')
    let maxAcked = 0
    for (let k = 0; k < KILLS; k++) {
      const run = await runChild(dir, seed + k, Math.floor(r() * 40))
      expect(run.stderr, `seed ${seed} kill ${k}`).toBe('')
      maxAcked = Math.max(maxAcked, run.acked)
      const keys = await KeyManager.open(join(dir, 'keys.json'))
      const storage = await FileLogStorage.open(join(dir, 'raft'), {
        segmentBytes: 16 * 1024,
        ...keys.hooks(),
      })
      const st = await storage.load()
      const base = st.snapshot?.meta.index ?? 0
      if (st.snapshot) expect(st.snapshot.data).toEqual(snapshotData(base, st.snapshot.meta.term))
      st.entries.forEach((e, i) => {
        expect(e.index, `seed ${seed} kill ${k}: gap`).toBe(base + 1 + i)
        expect(checkEntry(e.index, e.term, e.data), `seed ${seed} kill ${k}: entry ${e.index}`).toBe(true)
      })
      const last = st.entries.at(-1)?.index ?? base
      expect(last, `seed ${seed} kill ${k}: acknowledged entries lost`).toBeGreaterThanOrEqual(maxAcked)
      await storage.close()
      keys.close()
    }
  }, 600_000)
})
