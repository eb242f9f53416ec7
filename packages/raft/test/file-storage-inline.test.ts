// Saves whose caller waits for nothing else (`SaveOptions.inline`: a follower's write) are written on the
// calling thread with `writevSync`, without a trip through libuv's thread pool; any other save in the same batch,
// or a file system without `writevSync`, sends the batch through `writev` as before. Either way a save resolves
// only once it is durable.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type Entry, FileLogStorage, type FileSystem, nodeFileSystem } from '../src/index.js'
import { powerLossFileSystem } from '../src/testing/index.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'raft-inline-'))
  dirs.push(d)
  return d
}

/** `inner` counting its writes by kind; `withSync: false` leaves `writevSync` out. */
function counting(inner: FileSystem, withSync = true) {
  const calls = { writev: 0, writevSync: 0 }
  const files: FileSystem = {
    ...inner,
    writev: (fd, buffers, position) => {
      calls.writev++
      return inner.writev(fd, buffers, position)
    },
  }
  if (withSync) {
    files.writevSync = (fd, buffers, position) => {
      calls.writevSync++
      return inner.writevSync!(fd, buffers, position)
    }
  } else delete files.writevSync
  return { files, calls }
}

/** The methods of `files` bound to it, as a plain object to spread. */
function bound(files: FileSystem): FileSystem {
  const out: Record<string, unknown> = {}
  for (const k of Object.getOwnPropertyNames(Object.getPrototypeOf(files)))
    if (k !== 'constructor' && typeof (files as unknown as Record<string, unknown>)[k] === 'function')
      out[k] = (files as unknown as Record<string, (...a: unknown[]) => unknown>)[k]!.bind(files)
  return out as unknown as FileSystem
}

const entry = (index: number): Entry => ({
  index,
  term: 1,
  type: 0,
  data: new TextEncoder().encode(`entry ${index}`),
})

describe('FileLogStorage inline saves', () => {
  it('writes a batch of inline saves with writevSync, durable when the save resolves', async () => {
    const dir = tempDir()
    const { files, calls } = counting(nodeFileSystem)
    // However slow the shared disk is today: the fallback after a slow write has its own test below.
    const s = await FileLogStorage.open(dir, {
      fileSystem: files,
      maxInlineWriteMs: Number.POSITIVE_INFINITY,
    })
    calls.writev = 0
    await s.save({ entries: [entry(1)] }, { inline: true })
    await Promise.all([
      s.save({ entries: [entry(2)] }, { inline: true }),
      s.save({ entries: [entry(3)], hardState: { term: 1, vote: 'n1', commit: 2 } }, { inline: true }),
    ])
    expect(calls).toEqual({ writev: 0, writevSync: 2 })
    await s.close()
    const again = await FileLogStorage.open(dir)
    const state = await again.load()
    expect(state.entries.map((e) => e.index)).toEqual([1, 2, 3])
    expect(state.hardState).toEqual({ term: 1, vote: 'n1', commit: 2 })
    await again.close()
  })

  it('writes a batch through writev when one of its saves is not inline', async () => {
    const { files, calls } = counting(nodeFileSystem)
    const s = await FileLogStorage.open(tempDir(), { fileSystem: files })
    calls.writev = 0
    await Promise.all([s.save({ entries: [entry(1)] }, { inline: true }), s.save({ entries: [entry(2)] })])
    await s.save({ entries: [entry(3)] })
    expect(calls).toEqual({ writev: 2, writevSync: 0 })
    await s.close()
  })

  it('writes inline saves through writev when the file system has no writevSync', async () => {
    const dir = tempDir()
    const { files, calls } = counting(nodeFileSystem, false)
    const s = await FileLogStorage.open(dir, { fileSystem: files })
    calls.writev = 0
    await s.save({ entries: [entry(1)] }, { inline: true })
    expect(calls).toEqual({ writev: 1, writevSync: 0 })
    await s.close()
  })

  it('writes inline saves in the background while the last write was slower than maxInlineWriteMs', async () => {
    const inner = powerLossFileSystem({ unsynced: 'drop' })
    const order: string[] = []
    let slowMs = 0
    const files: FileSystem = {
      ...bound(inner),
      writev: (fd, buffers, position) => {
        order.push('background')
        return inner.writev(fd, buffers, position)
      },
      writevSync: (fd, buffers, position) => {
        order.push('inline')
        // A disk that takes its time: the caller's thread is held meanwhile.
        const until = performance.now() + slowMs
        while (performance.now() < until) {}
        return inner.writevSync!(fd, buffers, position)
      },
    }
    const s = await FileLogStorage.open('/raft/slow', { fileSystem: files, maxInlineWriteMs: 40 })
    order.length = 0
    slowMs = 60
    await s.save({ entries: [entry(1)] }, { inline: true })
    slowMs = 0
    await s.save({ entries: [entry(2)] }, { inline: true })
    await s.save({ entries: [entry(3)] }, { inline: true })
    expect(order).toEqual(['inline', 'background', 'inline'])
    await s.close()
  })

  it('refuses a maxInlineWriteMs that is not a number >= 0', async () => {
    await expect(FileLogStorage.open(tempDir(), { maxInlineWriteMs: -1 })).rejects.toThrow(RangeError)
  })

  it('keeps an inline save through a power cut right after it resolved', async () => {
    const files = powerLossFileSystem({ unsynced: 'drop' })
    // No zeros written ahead: their write (in the background) would count as a sync too.
    const s = await FileLogStorage.open('/raft/inline', { fileSystem: files, preallocateBytes: 0 })
    const synced = files.stats.syncs
    await s.save({ entries: [entry(1), entry(2)] }, { inline: true })
    expect(files.stats.syncs).toBe(synced + 1)
    const after = files.powerCut()
    const again = await FileLogStorage.open('/raft/inline', { fileSystem: after })
    expect((await again.load()).entries.map((e) => e.index)).toEqual([1, 2])
    await again.close()
  })
})
