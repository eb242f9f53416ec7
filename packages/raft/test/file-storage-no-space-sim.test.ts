// A seeded simulation of a disk that fills and frees at random: saves (appends, overwrites, hard states,
// snapshots of the log's own entries, compaction) go in up to four at a time while windows of little or no
// space come and go; a refused save is retried once space returns, as a RaftNode does. At random points the
// power is cut: the log that comes back must be exactly the acknowledged saves, in order (no acknowledged save
// lost, nothing of a refused one replayed), and so must `load()` on the live log.
import { describe, expect, it } from 'vitest'
import { FileLogStorage, isRaftError, type StorageUpdate } from '../src/index.js'
import { powerLossFileSystem } from '../src/testing/index.js'
import {
  applyOp,
  describeState,
  emptyModel,
  type ModelState,
  matches,
  type Op,
  opGenerator,
} from './fixtures/crash-model.js'
import { rng } from './helpers/cores.js'
import { fullDiskFileSystem } from './helpers/full-disk-fs.js'

const SLOW = process.env['SWARMKIT_SLOW'] === '1'
const DIR = '/raft/wal'
const OPTIONS = { segmentBytes: 4 * 1024, nodeId: 'n1' }

interface Outcome {
  acked: number
  refused: number
  cuts: number
}

async function run(seed: number, steps: number): Promise<Outcome> {
  const rnd = rng(seed)
  let base = powerLossFileSystem({ seed, unsynced: 'random' })
  let files = fullDiskFileSystem(base)
  let storage = await FileLogStorage.open(DIR, { ...OPTIONS, fileSystem: files })
  let nextOp = opGenerator(await storage.load(), rnd, `${seed}`)
  let model: ModelState = emptyModel()
  /** Refused saves, in the order they were issued, to go again. */
  let retry: Array<{ op: Op; update: StorageUpdate }> = []
  const out: Outcome = { acked: 0, refused: 0, cuts: 0 }
  let compacting: Promise<void> = Promise.resolve()
  const fail = (what: string, state: Parameters<typeof describeState>[0]) =>
    new Error(
      `seed ${seed}: ${what}\nlog: ${JSON.stringify(describeState(state)).slice(0, 1200)}\nmodel: ${JSON.stringify(model).slice(0, 1200)}`,
    )

  for (let step = 0; step < steps; step++) {
    const r = rnd()
    if (r < 0.1) files.room = Math.floor(rnd() * 3000)
    else if (r < 0.2) files.room = Number.POSITIVE_INFINITY

    // Issue up to four saves at once: refused ones first (in order), then new ones.
    const batch = retry.splice(0, 4)
    const size = 1 + Math.floor(rnd() * 4)
    while (batch.length < size && retry.length === 0) batch.push(nextOp())
    const results = await Promise.allSettled(batch.map((b) => storage.save(b.update)))
    const refused: typeof batch = []
    results.forEach((res, k) => {
      const b = batch[k]!
      if (res.status === 'fulfilled') {
        model = applyOp(model, b.op)
        out.acked++
        return
      }
      if (!isRaftError(res.reason, 'NO_SPACE')) throw new Error(`seed ${seed}: save failed: ${res.reason}`)
      out.refused++
      // A snapshot older than one acknowledged since is superseded: it does not go again.
      if (!b.op.snap || b.op.snap.index > (model.snap?.index ?? 0)) refused.push(b)
    })
    // Saves after a refused one (other than own snapshots, which commute) were refused too.
    const firstRefused = results.findIndex((x) => x.status === 'rejected')
    if (firstRefused >= 0) {
      for (let k = firstRefused + 1; k < batch.length; k++) {
        if (results[k]!.status === 'fulfilled' && !batch[firstRefused]!.op.snap && !batch[k]!.op.snap)
          throw new Error(`seed ${seed}: save ${k} was acknowledged after save ${firstRefused} was refused`)
      }
    }
    retry = [...refused, ...retry]
    const acked = results.map((x, k) => (x.status === 'fulfilled' ? batch[k]!.op : null))
    for (const op of acked) {
      // Compaction runs beside the next saves (it deletes segments while they are written and cut back).
      if (op?.snap && op.snap.index > 20 && rnd() < 0.5) {
        await compacting
        compacting = storage.compact(op.snap.index - 20)
      }
    }

    if (rnd() < 0.15) {
      // load() reads the segments as they are: not while compaction deletes some (a node loads only at start).
      await compacting
      const live = await storage.load()
      if (!matches(live, model)) throw fail(`step ${step}: load() is not the acknowledged saves`, live)
    }
    if (rnd() < 0.08) {
      // Power cut: only what was durable comes back, and it must be exactly what was acknowledged.
      out.cuts++
      await compacting
      base = base.powerCut()
      files = fullDiskFileSystem(base)
      storage = await FileLogStorage.open(DIR, { ...OPTIONS, fileSystem: files })
      const state = await storage.load()
      if (!matches(state, model))
        throw fail(`step ${step}: after a power cut the log is not the acknowledged saves`, state)
      nextOp = opGenerator(state, rnd, `${seed}-${step}`)
      retry = []
    }
  }
  await compacting
  files.room = Number.POSITIVE_INFINITY
  for (const b of retry) {
    await storage.save(b.update)
    model = applyOp(model, b.op)
    out.acked++
  }
  await storage.close()
  const files2 = base.powerCut()
  const reopened = await FileLogStorage.open(DIR, { ...OPTIONS, fileSystem: files2 })
  const state = await reopened.load()
  await reopened.close()
  if (!matches(state, model)) throw fail('at the end the log is not the acknowledged saves', state)
  return out
}

describe('FileLogStorage on a disk that fills and frees at random', () => {
  const seeds = SLOW ? 300 : 25
  it(`holds exactly the acknowledged saves through windows of no space and power cuts (${seeds} seeds)`, async () => {
    const total: Outcome = { acked: 0, refused: 0, cuts: 0 }
    for (let seed = 1; seed <= seeds; seed++) {
      const o = await run(seed, 120)
      total.acked += o.acked
      total.refused += o.refused
      total.cuts += o.cuts
    }
    console.log(`full-disk simulation: ${JSON.stringify(total)} over ${seeds} seeds`)
    // The faults happened: saves were refused, and the power was cut.
    expect(total.refused).toBeGreaterThan(seeds)
    expect(total.cuts).toBeGreaterThan(seeds)
    expect(total.acked).toBeGreaterThan(seeds * 50)
  }, 240_000)
})
