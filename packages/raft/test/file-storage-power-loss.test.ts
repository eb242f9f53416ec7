// FileLogStorage under power cuts: the file system loses (or tears) every write and every name that was not
// made durable, as LazyFS or ALICE would, and the log must still hold every acknowledged save. SIGKILL (the
// crash test) cannot show this: the page cache survives a killed process. This test fails when the log's
// segments are written without O_DSYNC/fsync, or a directory is not synced after a segment is created.
import { constants } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { FileLogStorage } from '../src/index.js'
import { type PowerLossFileSystem, powerLossFileSystem } from '../src/testing/index.js'
import {
  candidates,
  describeState,
  emptyModel,
  matches,
  type Op,
  opGenerator,
} from './fixtures/crash-model.js'
import { rng } from './helpers/cores.js'

const SLOW = process.env['SWARMKIT_SLOW'] === '1'
const DIR = '/raft/wal'
const OPTIONS = { segmentBytes: 4 * 1024, nodeId: 'n1', clusterId: 'power' }

interface Round {
  ops: Op[]
  acked: Set<number>
  files: PowerLossFileSystem
}

/**
 * Six writers save concurrently; the power is cut once `cutAfter` saves were acknowledged. With `inline`, about
 * half of the saves ask to be written inline (`SaveOptions.inline`), so batches of either kind and mixed ones go.
 */
async function runUntilCut(
  files: PowerLossFileSystem,
  seed: number,
  cutAfter: number,
  inline = false,
): Promise<Round> {
  const rnd = rng(seed)
  const storage = await FileLogStorage.open(DIR, { ...OPTIONS, fileSystem: files })
  const nextOp = opGenerator(await storage.load(), rnd, String(seed))
  const round: Round = { ops: [], acked: new Set(), files }
  let acks = 0
  let cut = false
  const cutNow = () => {
    if (cut) return
    cut = true
    round.files = files.powerCut()
  }
  if (cutAfter === 0) cutNow()
  const writer = async () => {
    while (!cut) {
      const { op, update } = nextOp()
      const at = round.ops.push(op) - 1
      try {
        await storage.save(update, inline && rnd() < 0.5 ? { inline: true } : undefined)
      } catch {
        return // the power is out
      }
      if (cut) return
      round.acked.add(at)
      if (++acks >= cutAfter) cutNow()
      if (op.snap && op.snap.index > 20) await storage.compact(op.snap.index - 20).catch(() => {})
    }
  }
  await Promise.all([writer(), writer(), writer(), writer(), writer(), writer()])
  return round
}

async function powerCuts(
  seed: number,
  rounds: number,
  unsynced: 'drop' | 'random',
  inline = false,
): Promise<number> {
  const rnd = rng(seed)
  let files = powerLossFileSystem({ seed, unsynced })
  let model = emptyModel()
  let acked = 0
  for (let k = 0; k < rounds; k++) {
    const r = rnd()
    const cutAfter = r < 0.1 ? 0 : 1 + Math.floor(rnd() * 40)
    const round = await runUntilCut(files, seed * 1000 + k, cutAfter, inline)
    acked += round.acked.size
    files = round.files
    const storage = await FileLogStorage.open(DIR, { ...OPTIONS, fileSystem: files })
    const state = await storage.load()
    await storage.close()
    const found = candidates(model, round.ops, round.acked).find((m) => matches(state, m))
    if (!found) {
      throw new Error(
        `seed ${seed} round ${k}: after a power cut (${JSON.stringify(files.lastCut)}) the log is not a prefix ` +
          `of the issued saves holding every acknowledged one (${round.acked.size} acknowledged, ` +
          `${round.ops.length} issued)\nrecovered: ${JSON.stringify(describeState(state)).slice(0, 1500)}\n` +
          `before: ${JSON.stringify(model).slice(0, 1000)}`,
      )
    }
    model = found
  }
  return acked
}

describe('FileLogStorage under power cuts', () => {
  const seeds = SLOW ? 60 : 8
  it(`keeps every acknowledged save when unsynced writes are lost (${seeds} seeds x 15 cuts)`, async () => {
    let acked = 0
    for (let seed = 1; seed <= seeds; seed++) acked += await powerCuts(seed, 15, 'drop')
    expect(acked).toBeGreaterThan(seeds * 15)
  }, 240_000)

  it(`keeps every acknowledged save when unsynced writes are torn or kept in part (${seeds} seeds x 15 cuts)`, async () => {
    let acked = 0
    for (let seed = 1; seed <= seeds; seed++) acked += await powerCuts(seed + 500, 15, 'random')
    expect(acked).toBeGreaterThan(seeds * 15)
  }, 240_000)

  it(`keeps every acknowledged save when saves are written inline (${seeds} seeds x 15 cuts)`, async () => {
    let acked = 0
    for (let seed = 1; seed <= seeds; seed++) acked += await powerCuts(seed + 900, 15, 'random', true)
    expect(acked).toBeGreaterThan(seeds * 15)
  }, 240_000)
})

describe('powerLossFileSystem', () => {
  const enc = (s: string) => new TextEncoder().encode(s)
  const dec = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined)
  const { O_CREAT, O_WRONLY, O_DSYNC, O_RDONLY } = constants

  it('keeps what was fsynced and loses what was not', async () => {
    const fs = powerLossFileSystem({ unsynced: 'drop' })
    await fs.mkdir('/d')
    const fd = await fs.open('/d/a', O_WRONLY | O_CREAT)
    await fs.writev(fd, [enc('hello ')], 0)
    await fs.fsync(fd)
    await fs.writev(fd, [enc('world')], 6)
    const dir = await fs.open('/d', O_RDONLY)
    await fs.fsync(dir)
    expect(dec(fs.contents('/d/a'))).toBe('hello world')
    const after = fs.powerCut()
    expect(dec(after.contents('/d/a'))).toBe('hello ')
    expect(after.lastCut.dropped).toBe(1)
    // The old incarnation is dead.
    await expect(fs.writev(fd, [enc('x')], 0)).rejects.toMatchObject({ code: 'EIO' })
  })

  it('makes O_DSYNC writes durable when they return, and a name durable only with its directory', async () => {
    const fs = powerLossFileSystem({ unsynced: 'drop' })
    await fs.mkdir('/d')
    const fd = await fs.open('/d/log', O_WRONLY | O_CREAT | O_DSYNC)
    await fs.writev(fd, [enc('record')], 0)
    // Not in the directory on disk yet: lost with the power.
    expect(fs.powerCut().contents('/d/log')).toBeUndefined()

    const fs2 = powerLossFileSystem({ unsynced: 'drop' })
    await fs2.mkdir('/d')
    const fd2 = await fs2.open('/d/log', O_WRONLY | O_CREAT | O_DSYNC)
    const dir = await fs2.open('/d', O_RDONLY)
    await fs2.fsync(dir)
    await fs2.writev(fd2, [enc('record')], 0)
    const inFlight = fs2.writev(fd2, [enc('-next')], 6)
    await fs2.rename('/d/log', '/d/renamed')
    const after = fs2.powerCut()
    await expect(inFlight).rejects.toMatchObject({ code: 'EIO' })
    expect(dec(after.contents('/d/log'))).toBe('record')
    expect(after.contents('/d/renamed')).toBeUndefined()
    expect(after.lastCut.namesUndone).toBeGreaterThan(0)
  })
})
