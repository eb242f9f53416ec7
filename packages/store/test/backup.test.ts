import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { backupStateDir } from '../src/index.js'

describe('backupStateDir', () => {
  let root: string
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'store-backup-'))
  })
  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('copies the tree, skipping lock and temporary files, into an empty destination only', async () => {
    const src = join(root, 'swarm')
    await mkdir(join(src, 'raft'), { recursive: true })
    await writeFile(join(src, 'raft', 'wal-1.log'), 'log')
    await writeFile(join(src, 'raft', 'LOCK'), '123')
    await writeFile(join(src, 'keys.json'), '{}')
    await writeFile(join(src, 'keys.json.tmp'), 'partial')
    const r = await backupStateDir(src, join(root, 'backup'))
    expect(r).toEqual({ files: 2, bytes: 5 })
    expect(await readFile(join(root, 'backup', 'raft', 'wal-1.log'), 'utf8')).toBe('log')
    await expect(backupStateDir(src, join(root, 'backup'))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    })
    await expect(backupStateDir('', join(root, 'x'))).rejects.toThrow(TypeError)
  })
})
