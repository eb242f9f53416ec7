// One process per state directory: a node takes `LOCK` (its pid) before it reads or writes anything there,
// so that a second process started on a live directory stops at once instead of half-starting on the
// first one's raft log, key file and node file.

import { mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'

const LOCK = 'LOCK'

/** The state directory is held by a live process (this one or another). */
export class StateDirInUseError extends Error {
  override readonly name = 'StateDirInUseError'
  readonly code = 'STATE_DIR_IN_USE'
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(`${dir} is in use by process ${pid}`)
  }
}

export function isStateDirInUseError(err: unknown): err is StateDirInUseError {
  return (err as { name?: unknown })?.name === 'StateDirInUseError'
}

/** A held lock; `release()` deletes the file only while it still names this process. */
export interface StateDirLock {
  release(): Promise<void>
}

/** Directories locked by this process. */
const held = new Set<string>()

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function ownerOf(path: string): Promise<number | undefined> {
  // A pid and nothing more: read a few bytes, trust nothing else.
  const text = await readFile(path, 'latin1').catch(() => '')
  const pid = Number.parseInt(text.slice(0, 32), 10)
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
}

/**
 * Locks `dir` (created, mode 0700, if missing) for this process. A lock whose process is gone is taken over;
 * one held by a live process, or already by this process, is refused with {@link StateDirInUseError}.
 */
export async function lockStateDir(dir: string): Promise<StateDirLock> {
  const abs = resolve(dir)
  if (held.has(abs)) throw new StateDirInUseError(abs, process.pid)
  held.add(abs)
  const path = join(abs, LOCK)
  try {
    await mkdir(abs, { recursive: true, mode: 0o700 })
    try {
      await writeFile(path, String(process.pid), { flag: 'wx', mode: 0o600 })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const pid = await ownerOf(path)
      // Our own pid in a directory this process does not hold: copied from a live one (a backup).
      if (pid !== undefined && pid !== process.pid && alive(pid)) throw new StateDirInUseError(abs, pid)
      const tmp = `${path}.${process.pid}.tmp`
      await writeFile(tmp, String(process.pid), { mode: 0o600 })
      await rename(tmp, path)
    }
    const fh = await open(abs, 'r')
    await fh.sync().finally(() => fh.close())
  } catch (err) {
    held.delete(abs)
    throw err
  }
  let released = false
  return {
    async release() {
      if (released) return
      released = true
      held.delete(abs)
      if ((await ownerOf(path)) === process.pid) await unlink(path).catch(() => {})
    },
  }
}
