import { copyFileSync, cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileLogStorage } from '@swarmkit/raft'
import { KeyManager } from '@swarmkit/store'
import { afterAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { cleanup, node, ok, stateDir, waitFor } from './helpers.js'

const scratch = mkdtempSync(join(tmpdir(), 'swarmkit-reencrypt-'))
let copies = 0

/** A copy of `path` (a file or a directory, without its LOCK) in the scratch directory. */
function copyOf(path: string): string {
  const to = join(scratch, `copy-${++copies}`)
  cpSync(path, to, { recursive: true, filter: (src) => !src.endsWith('/LOCK') })
  return to
}

/**
 * Opens a copy of the manager's raft directory with two key files: each record is first tried with the
 * saved old one, then with the current one. Returns how many records the old key file opened and how many
 * entries the log holds (so that "none" is not "there was nothing to open").
 */
async function openedByOldKeys(
  dir: string,
  old: { file: string; unlockKey?: string },
  currentUnlockKey: string,
): Promise<{ byOld: number; entries: number }> {
  const oldKeys = await KeyManager.open(copyOf(old.file), old.unlockKey ? { unlockKey: old.unlockKey } : {})
  const keys = await KeyManager.open(copyOf(join(dir, 'raft-keys')), { unlockKey: currentUnlockKey })
  const was = oldKeys.hooks()
  const now = keys.hooks()
  let byOld = 0
  const storage = await FileLogStorage.open(copyOf(join(dir, 'raft')), {
    ...now,
    open: (data, ctx) => {
      let opened: Uint8Array
      try {
        opened = was.open(data, ctx)
      } catch {
        return now.open(data, ctx)
      }
      byOld++
      return opened
    },
  })
  try {
    const st = await storage.load()
    return { byOld, entries: st.entries.length + (st.snapshot ? 1 : 0) }
  } finally {
    await storage.close()
    oldKeys.close()
    keys.close()
  }
}

// Issue 13, item 5: turning autolock on, and rotating the unlock key, replace the data key and re-encrypt
// what the old one sealed: a saved copy of an earlier key file opens nothing on disk afterwards.
describe('autolock re-encrypts what was written before', () => {
  let n: ClusterNode | undefined
  afterAll(async () => {
    await n?.close()
    cleanup()
    rmSync(scratch, { recursive: true, force: true })
  })

  it('leaves nothing on disk that an earlier key file opens', { timeout: 120_000 }, async () => {
    n = await node('reenc')
    const dir = stateDir('reenc')
    await ok(n, ['swarm', 'init'])
    await ok(n, ['secret', 'create', 'db-password', '-'], 'hunter2\n')
    await ok(n, ['service', 'create', '-d', '--no-resolve-image', '--name', 'web', 'nginx:alpine'])
    // The key file before autolock: the data key in the clear.
    const plainKeyFile = join(scratch, 'raft-keys.plain')
    copyFileSync(join(dir, 'raft-keys'), plainKeyFile)

    const on = await ok(n, ['swarm', 'update', '--autolock=true'])
    const key1 = /SWMKEY-1-[A-Za-z0-9+/]{43}/.exec(on)![0]
    const afterAutolock = await waitFor(
      async () => {
        const r = await openedByOldKeys(dir, { file: plainKeyFile }, key1)
        return r.byOld === 0 && r
      },
      'nothing left that the plain key file opens',
      30_000,
    )
    expect(afterAutolock.entries).toBeGreaterThan(0)

    // The same for an unlock key rotation: the key file wrapped under key1 opens nothing afterwards.
    const wrappedKeyFile = join(scratch, 'raft-keys.key1')
    copyFileSync(join(dir, 'raft-keys'), wrappedKeyFile)
    const key2 = (await ok(n, ['swarm', 'unlock-key', '--rotate', '-q'])).trim()
    expect(key2).not.toBe(key1)
    await waitFor(
      async () => (await openedByOldKeys(dir, { file: wrappedKeyFile, unlockKey: key1 }, key2)).byOld === 0,
      'nothing left that the key1 key file opens',
      30_000,
    )
    expect(readdirSync(join(dir, 'raft')).filter((f) => f.endsWith('.tmp'))).toEqual([])

    // The manager still comes back from its log: locked, then unlocked with the new key, state intact.
    await n.close()
    n = await node('reenc')
    expect(await ok(n, ['info'])).toMatch(/Swarm: locked/)
    await ok(n, ['swarm', 'unlock'], `${key2}\n`)
    expect((await ok(n, ['secret', 'ls', '--format', '{{.Name}}'])).trim()).toBe('db-password')
    expect((await ok(n, ['service', 'ls', '--format', '{{.Name}}'])).trim()).toBe('web')
  })
})
