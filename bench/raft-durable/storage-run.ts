// FileLogStorage alone, without raft or network: what the log itself can sync.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileLogStorage } from '@swarmkit/raft'

export interface StorageRun {
  writers: number
  savesPerSec: number
  entriesPerSec: number
  mbPerSec: number
  syncsPerSec: number
}

/** FileLogStorage alone: `writers` concurrent loops each saving one 256-byte entry with a hard state. */
export async function storageRun(writers: number, ms: number): Promise<StorageRun> {
  const dir = mkdtempSync(join(tmpdir(), 'raft-durable-storage-'))
  const s = await FileLogStorage.open(dir)
  await s.load()
  let next = 1
  const data = new Uint8Array(256).fill(0x62)
  const start = performance.now()
  const end = start + ms
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (performance.now() < end) {
        const index = next++
        await s.save({
          entries: [{ index, term: 1, type: 0, data }],
          hardState: { term: 1, vote: 'n1', commit: index - 1 },
        })
      }
    }),
  )
  const sec = (performance.now() - start) / 1000
  const st = s.stats()
  await s.close()
  rmSync(dir, { recursive: true, force: true })
  return {
    writers,
    savesPerSec: st.saves / sec,
    entriesPerSec: (next - 1) / sec,
    mbPerSec: st.bytes / sec / 1e6,
    syncsPerSec: st.syncs / sec,
  }
}
