// An in-memory file system that keeps what a power cut keeps and nothing more, in the manner of LazyFS and
// ALICE: data is durable once fsync'ed (or written through O_DSYNC), names once their directory was fsync'ed.
// At a power cut each write that was not durable is kept, dropped or torn, decided by a seeded PRNG.
import { basename, dirname, resolve } from 'node:path'
import type { FileSystem } from '../file-system.js'
import { O_CREAT, O_DSYNC, O_EXCL, O_TRUNC } from '../file-system.js'

/** What becomes of writes that were not durable when the power is cut. */
export type UnsyncedWrites =
  /** Every one is lost (the page cache is gone): the strictest test of fsync. */
  | 'drop'
  /** Each is kept whole, dropped, cut short, or keeps only some of its 512-byte sectors. */
  | 'random'

/** Options of {@link powerLossFileSystem}. */
export interface PowerLossOptions {
  /** Seed of the decisions made at power cuts (default 1). */
  readonly seed?: number
  /** Default `'random'`. */
  readonly unsynced?: UnsyncedWrites
  /**
   * How long a write or sync takes: the operation completes when the promise resolves (default: one turn of the
   * event loop). A power cut before then leaves it not durable. A simulation passes its virtual clock's timer.
   */
  readonly latency?: () => Promise<void>
}

/** Counters of one incarnation of a {@link PowerLossFileSystem}. */
export interface PowerLossStats {
  /** Writes and truncations issued. */
  writes: number
  /** fsync/fdatasync calls (and O_DSYNC writes) completed. */
  syncs: number
}

/** What the last power cut did to writes that were not durable. */
export interface PowerCutReport {
  readonly kept: number
  readonly dropped: number
  readonly torn: number
  /** Names whose creation, rename or removal was not durable and was undone. */
  readonly namesUndone: number
}

/** A {@link FileSystem} that can lose power. */
export interface PowerLossFileSystem extends FileSystem {
  /**
   * Cuts the power: returns a file system holding only what survived (the next boot). This one is dead from
   * now on: every call, and every call still in flight, fails with `EIO`.
   */
  powerCut(): PowerLossFileSystem
  /** What the power cut that made this file system did (all zero for the first one). */
  readonly lastCut: PowerCutReport
  readonly stats: PowerLossStats
  /** The current content of a file (what a read sees now), for tests. */
  contents(path: string): Uint8Array | undefined
}

type Op =
  | { kind: 'write'; pos: number; bytes: Uint8Array; durable: boolean }
  | { kind: 'truncate'; length: number; durable: boolean }

class Inode {
  /** Content as of the last point where every op was durable. */
  base: Uint8Array
  /** Ops after `base`, in order; some may be durable already (O_DSYNC writes). */
  ops: Op[] = []
  /** What reads see now. */
  data: Uint8Array
  /** Byte ranges of writes in flight (issued, not returned). */
  readonly writing = new Set<{ from: number; to: number }>()

  constructor(content: Uint8Array = new Uint8Array(0)) {
    this.base = content
    this.data = content
  }

  apply(op: Op): void {
    this.ops.push(op)
    this.data = applyOp(this.data, op)
  }

  sync(): void {
    this.base = this.data
    this.ops = []
  }

  /** Folds the durable ops at the front into `base`. */
  compact(): void {
    let k = 0
    while (k < this.ops.length && this.ops[k]!.durable) this.base = applyOp(this.base, this.ops[k++]!)
    if (k > 0) this.ops.splice(0, k)
  }
}

function applyOp(content: Uint8Array, op: Op): Uint8Array {
  if (op.kind === 'truncate') {
    if (op.length <= content.length) return content.subarray(0, op.length)
    const out = new Uint8Array(op.length)
    out.set(content)
    return out
  }
  const end = op.pos + op.bytes.length
  const out = new Uint8Array(Math.max(content.length, end))
  out.set(content)
  out.set(op.bytes, op.pos)
  return out
}

interface Fd {
  readonly inode: Inode | null
  readonly dir: string | null
  readonly dsync: boolean
  /** Writes in flight on this descriptor. */
  writing: number
}

function error(code: string, message: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: ${message}`) as NodeJS.ErrnoException
  e.code = code
  return e
}

function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const SECTOR = 512
const NO_CUT: PowerCutReport = { kept: 0, dropped: 0, torn: 0, namesUndone: 0 }

class MemoryPowerLossFs implements PowerLossFileSystem {
  /** Names as they are now, per directory. */
  private readonly names = new Map<string, Map<string, Inode>>()
  /** Names as the disk has them, per directory (changed by a directory fsync). */
  private readonly durableNames = new Map<string, Map<string, Inode>>()
  private readonly fds = new Map<number, Fd>()
  private nextFd = 3
  private dead = false
  readonly stats: PowerLossStats = { writes: 0, syncs: 0 }

  constructor(
    private readonly options: Required<PowerLossOptions>,
    private readonly random: () => number,
    readonly lastCut: PowerCutReport,
  ) {
    this.cut = new Promise<never>((_, reject) => {
      this.cutNow = reject
    })
    this.cut.catch(() => {})
  }

  private alive(): void {
    if (this.dead) throw error('EIO', 'the power was cut')
  }

  /** Rejects at the power cut: operations in flight then fail at once instead of waiting out their latency. */
  private readonly cut: Promise<never>
  private cutNow: (e: Error) => void = () => {}

  private async settle(): Promise<void> {
    await Promise.race([this.options.latency(), this.cut])
    this.alive()
  }

  private lookup(path: string): Inode | undefined {
    return this.names.get(dirname(path))?.get(basename(path))
  }

  private dirOf(path: string): Map<string, Inode> {
    const d = this.names.get(dirname(path))
    if (!d) throw error('ENOENT', `no directory ${dirname(path)}`)
    return d
  }

  contents(path: string): Uint8Array | undefined {
    return this.lookup(resolve(path))?.data.slice()
  }

  async open(path: string, flags: number): Promise<number> {
    this.alive()
    const p = resolve(path)
    let fd: Fd
    if (this.names.has(p)) {
      fd = { inode: null, dir: p, dsync: false, writing: 0 }
    } else {
      const dir = this.dirOf(p)
      let inode = dir.get(basename(p))
      if (inode && flags & O_CREAT && flags & O_EXCL) throw error('EEXIST', `${p} exists`)
      if (!inode) {
        if (!(flags & O_CREAT)) throw error('ENOENT', `no file ${p}`)
        inode = new Inode()
        dir.set(basename(p), inode)
      } else if (flags & O_TRUNC && inode.data.length > 0) {
        this.stats.writes++
        inode.apply({ kind: 'truncate', length: 0, durable: false })
      }
      fd = { inode, dir: null, dsync: (flags & O_DSYNC) !== 0, writing: 0 }
    }
    const n = this.nextFd++
    this.fds.set(n, fd)
    return n
  }

  private fd(n: number): Fd {
    this.alive()
    const fd = this.fds.get(n)
    if (!fd) throw error('EBADF', `bad file descriptor ${n}`)
    return fd
  }

  async close(n: number): Promise<void> {
    const fd = this.fd(n)
    if (fd.writing > 0)
      this.misuse(`close of descriptor ${n} while ${fd.writing} write(s) on it are in flight`)
    this.fds.delete(n)
  }

  /**
   * Misuse whose outcome a real kernel leaves undefined (writes in flight that overlap; a truncation or close
   * racing a write): refused, and remembered so that the next power cut throws even if the caller swallowed it.
   */
  private misuse(what: string): never {
    this.misused.push(what)
    throw error('EINVAL', `misuse of the file system: ${what}`)
  }

  private readonly misused: string[] = []

  async read(
    n: number,
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<number> {
    const fd = this.fd(n)
    if (!fd.inode) throw error('EISDIR', 'read of a directory')
    const data = fd.inode.data
    const end = Math.min(data.length, position + length)
    if (end <= position) return 0
    buffer.set(data.subarray(position, end), offset)
    return end - position
  }

  async writev(n: number, buffers: readonly Uint8Array[], position: number): Promise<number> {
    const { fd, op, total } = this.startWrite(n, buffers, position)
    const range = { from: position, to: position + total }
    fd.inode!.writing.add(range)
    fd.writing++
    try {
      await this.settle()
    } finally {
      fd.inode!.writing.delete(range)
      fd.writing--
    }
    this.endWrite(fd, op)
    return total
  }

  /** A write that blocks its caller: no power cut falls in the middle of it (the caller does nothing else). */
  writevSync(n: number, buffers: readonly Uint8Array[], position: number): number {
    const { fd, op, total } = this.startWrite(n, buffers, position)
    this.endWrite(fd, op)
    return total
  }

  private startWrite(
    n: number,
    buffers: readonly Uint8Array[],
    position: number,
  ): { fd: Fd; op: Op; total: number } {
    const fd = this.fd(n)
    const inode = fd.inode
    if (!inode) throw error('EISDIR', 'write to a directory')
    const total = buffers.reduce((s, b) => s + b.byteLength, 0)
    for (const w of inode.writing) {
      if (position < w.to && w.from < position + total)
        this.misuse(
          `a write of [${position}, ${position + total}) overlaps one in flight of [${w.from}, ${w.to})`,
        )
    }
    const bytes = new Uint8Array(total)
    let at = 0
    for (const b of buffers) {
      bytes.set(b, at)
      at += b.byteLength
    }
    const op: Op = { kind: 'write', pos: position, bytes, durable: false }
    this.stats.writes++
    inode.apply(op)
    return { fd, op, total }
  }

  private endWrite(fd: Fd, op: Op): void {
    if (!fd.dsync) return
    op.durable = true
    this.stats.syncs++
    fd.inode!.compact()
  }

  async fsync(n: number): Promise<void> {
    const fd = this.fd(n)
    // What the sync covers is what was written when it was called.
    const covered = fd.inode ? [...fd.inode.ops] : []
    const names = fd.dir !== null ? new Map(this.names.get(fd.dir)) : null
    await this.settle()
    this.stats.syncs++
    if (fd.inode) {
      for (const op of covered) op.durable = true
      fd.inode.compact()
    } else if (fd.dir !== null && names) {
      this.durableNames.set(fd.dir, names)
    }
  }

  fdatasync(n: number): Promise<void> {
    return this.fsync(n)
  }

  async size(path: string): Promise<number> {
    this.alive()
    const inode = this.lookup(resolve(path))
    if (!inode) throw error('ENOENT', `no file ${path}`)
    return inode.data.length
  }

  async readdir(dir: string): Promise<string[]> {
    this.alive()
    const p = resolve(dir)
    const d = this.names.get(p)
    if (!d) throw error('ENOENT', `no directory ${p}`)
    const out = [...d.keys()]
    // Subdirectories are names too.
    for (const other of this.names.keys()) if (other !== p && dirname(other) === p) out.push(basename(other))
    return out.sort()
  }

  async mkdir(dir: string): Promise<void> {
    this.alive()
    // Directories are durable once made (FileLogStorage makes its own once, before anything else).
    for (let p = resolve(dir); !this.names.has(p); p = dirname(p)) {
      this.names.set(p, new Map())
      this.durableNames.set(p, new Map())
      if (dirname(p) === p) break
    }
  }

  async rename(from: string, to: string): Promise<void> {
    this.alive()
    const a = resolve(from)
    const b = resolve(to)
    const inode = this.lookup(a)
    if (!inode) throw error('ENOENT', `no file ${a}`)
    this.dirOf(b).set(basename(b), inode)
    this.dirOf(a).delete(basename(a))
  }

  async unlink(path: string): Promise<void> {
    this.alive()
    const p = resolve(path)
    if (!this.dirOf(p).delete(basename(p))) throw error('ENOENT', `no file ${p}`)
  }

  async truncate(path: string, length: number): Promise<void> {
    this.alive()
    const inode = this.lookup(resolve(path))
    if (!inode) throw error('ENOENT', `no file ${path}`)
    for (const w of inode.writing)
      if (w.to > length)
        this.misuse(`truncation to ${length} while a write of [${w.from}, ${w.to}) is in flight`)
    this.stats.writes++
    inode.apply({ kind: 'truncate', length, durable: false })
  }

  powerCut(): PowerLossFileSystem {
    this.alive()
    if (this.misused.length > 0) throw new Error(`the file system was misused: ${this.misused.join('; ')}`)
    this.dead = true
    this.cutNow(error('EIO', 'the power was cut'))
    const r = this.random
    const report = { kept: 0, dropped: 0, torn: 0, namesUndone: 0 }
    const survived = new Map<Inode, Inode>()
    const surviving = (inode: Inode): Inode => {
      let out = survived.get(inode)
      if (out) return out
      let content = inode.base
      for (const op of inode.ops) {
        if (op.durable) {
          content = applyOp(content, op)
          continue
        }
        const x = this.options.unsynced === 'drop' ? 0 : r()
        if (x < 0.25 || this.options.unsynced === 'drop') {
          report.dropped++
        } else if (x < 0.5 || op.kind === 'truncate') {
          report.kept++
          content = applyOp(content, op)
        } else if (x < 0.75) {
          // Cut short: a prefix of whole sectors reached the disk.
          report.torn++
          const sectors = Math.ceil(op.bytes.length / SECTOR)
          const keep = Math.floor(r() * sectors) * SECTOR
          if (keep > 0) content = applyOp(content, { ...op, bytes: op.bytes.subarray(0, keep) })
        } else {
          // Sectors written out of order: some reached the disk, the file may have grown with zeros.
          report.torn++
          const grown = new Uint8Array(Math.max(content.length, op.pos + op.bytes.length))
          grown.set(content)
          if (r() < 0.5) content = grown
          for (let s = 0; s < op.bytes.length; s += SECTOR) {
            if (r() < 0.5) {
              const end = Math.min(op.bytes.length, s + SECTOR)
              content = applyOp(content, { ...op, pos: op.pos + s, bytes: op.bytes.subarray(s, end) })
            }
          }
        }
      }
      out = new Inode(content.slice())
      survived.set(inode, out)
      return out
    }
    const next = new MemoryPowerLossFs(this.options, r, report)
    for (const [dir, names] of this.durableNames) {
      const now = this.names.get(dir)
      for (const [name, inode] of names) if (now?.get(name) !== inode) report.namesUndone++
      for (const [name, inode] of now ?? []) if (names.get(name) !== inode) report.namesUndone++
      const copy = new Map<string, Inode>()
      for (const [name, inode] of names) copy.set(name, surviving(inode))
      next.names.set(dir, copy)
      next.durableNames.set(dir, new Map(copy))
    }
    return next
  }
}

/**
 * A file system in memory for {@link FileLogStorage}'s `fileSystem` option that loses, at `powerCut()`, every
 * write and every name that was not made durable, or tears it:
 *
 * ```ts
 * let files = powerLossFileSystem({ seed: 7 })
 * const log = await FileLogStorage.open('/wal', { fileSystem: files })
 * await log.save({ entries: [...] })   // acknowledged: must survive
 * files = files.powerCut()            // the old storage is dead; reopen on what survived
 * const again = await FileLogStorage.open('/wal', { fileSystem: files })
 * ```
 */
export function powerLossFileSystem(options: PowerLossOptions = {}): PowerLossFileSystem {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  const seed = options.seed ?? 1
  if (!Number.isSafeInteger(seed)) throw new TypeError('options.seed must be an integer')
  const unsynced = options.unsynced ?? 'random'
  if (unsynced !== 'drop' && unsynced !== 'random') {
    throw new TypeError("options.unsynced must be 'drop' or 'random'")
  }
  if (options.latency !== undefined && typeof options.latency !== 'function') {
    throw new TypeError('options.latency must be a function')
  }
  const latency = options.latency ?? (() => new Promise<void>((r) => setImmediate(r)))
  return new MemoryPowerLossFs({ seed, unsynced, latency }, prng(seed), NO_CUT)
}
