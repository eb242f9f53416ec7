// A log directory is used by one FileLogStorage at a time: one per directory within a process, and a LOCK file
// holding the owner's pid across processes (a lock left by a process that is gone is taken over).
import { Buffer } from 'node:buffer'
import { join } from 'node:path'
import { RaftError } from '../../errors.js'
import { type FileSystem, O_RDONLY, writeAtomic, writeNew } from '../../file-system.js'
import { ioError } from './checks.js'

const LOCK = 'LOCK'

/** Directories open in this process, per file system. */
const heldBy = new WeakMap<FileSystem, Set<string>>()

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export class DirLock {
  /** Whether this instance wrote the LOCK file: one refused the directory must never delete the owner's. */
  #owns = false

  private constructor(
    private readonly files: FileSystem,
    readonly dir: string,
  ) {}

  /** Claims `dir` (an absolute path) within this process; LOCKED when it is open already. */
  static claim(files: FileSystem, dir: string): DirLock {
    let held = heldBy.get(files)
    if (!held) heldBy.set(files, (held = new Set()))
    if (held.has(dir)) throw new RaftError('LOCKED', `${dir} is already open in this process`)
    held.add(dir)
    return new DirLock(files, dir)
  }

  /** Takes the LOCK file (LOCKED while a live process holds it; a dead one's lock is taken over). */
  async acquire(): Promise<void> {
    const path = join(this.dir, LOCK)
    try {
      await writeNew(this.files, path, Buffer.from(String(process.pid)))
      this.#owns = true
      return
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(`cannot create ${path}`, e)
    }
    // Read at most 32 bytes: a pid, never trusted beyond that.
    const files = this.files
    const text = await files
      .open(path, O_RDONLY)
      .then(async (fd) => {
        try {
          const buf = Buffer.alloc(32)
          const bytesRead = await files.read(fd, buf, 0, 32, 0)
          return buf.toString('latin1', 0, bytesRead)
        } finally {
          await files.close(fd)
        }
      })
      .catch(() => '')
    const pid = Number.parseInt(text, 10)
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) {
      throw new RaftError('LOCKED', `${this.dir} is in use by process ${pid}`)
    }
    // A lock left by a process that is gone: take it over.
    await writeAtomic(this.files, this.dir, LOCK, Buffer.from(String(process.pid)))
    this.#owns = true
  }

  /** Deletes the LOCK file (if this instance wrote it) and releases the directory within this process. */
  async release(): Promise<void> {
    if (this.#owns) await this.files.unlink(join(this.dir, LOCK)).catch(() => {})
    this.#owns = false
    heldBy.get(this.files)?.delete(this.dir)
  }
}
