import { randomBytes } from 'node:crypto'
import { StoreError, type StoreErrorCode } from './errors.js'
import { rangeError, typeError } from './internal/check.js'
import {
  type Action,
  decodeCommand,
  decodeSnapshot,
  encodeCommand,
  encodeSnapshot,
  Op,
  type ProposerState,
} from './internal/codec.js'
import { freezeDeep } from './internal/data.js'
import { INDEXES, TableState } from './internal/indexes.js'
import { type Entry, type Tables, TxImpl } from './internal/tx.js'
import { validateObject } from './internal/validate.js'
import { EventHistory, Watcher } from './internal/watcher.js'
import { type SpecLimits, specLimits } from './service-spec.js'
import type {
  DesiredTaskState,
  Meta,
  NodeAvailability,
  NodeRole,
  Service,
  Table,
  TableObjects,
  TaskState,
} from './types.js'
import { TABLES } from './types.js'
import type { StoreEvent, Watch, WatchOptions } from './watch.js'

/** Which objects `find` returns; one selector at a time (narrow further with the filter argument). */
export type By =
  | { all: true }
  | { id: string }
  | { idPrefix: string }
  /** Case-insensitive exact name (nodes: `spec.name` or `description.hostname`). */
  | { name: string }
  | { namePrefix: string }
  | { serviceId: string }
  | { nodeId: string }
  /** Tasks in a slot: replicated services by slot number, global services by node (`slot: 0, nodeId`). */
  | { slot: { serviceId: string; slot: number; nodeId?: string } }
  | { desiredState: DesiredTaskState }
  | { taskState: TaskState }
  | { role: NodeRole }
  | { availability: NodeAvailability }
  | { referencedNetworkId: string }
  | { referencedSecretId: string }
  | { referencedConfigId: string }

/** An object to create: `meta` is filled in by the store (and a service's `specVersion` when absent). */
export type NewObject<O> = O extends Service
  ? Omit<O, 'meta' | 'specVersion'> & { meta?: Meta; specVersion?: { index: number } }
  : Omit<O, 'meta'> & { meta?: Meta }

/** A consistent read-only view of the store. Objects are deep-frozen; build changed copies to write. */
export interface ReadTx {
  /** The store version this view reads at. */
  readonly version: number
  get<T extends Table>(table: T, id: string): TableObjects[T] | undefined
  /** Objects selected by `by` (all when absent) and kept by `filter`, in no particular order. */
  find<T extends Table>(table: T, by?: By, filter?: (object: TableObjects[T]) => boolean): TableObjects[T][]
  /**
   * Resolves a user's reference as Docker does: full ID, then exact name (case-insensitive), then unique ID
   * prefix. Throws `StoreError` `NOT_FOUND` ("service web not found") or `INVALID_ARGUMENT` when ambiguous.
   */
  lookup<T extends Table>(table: T, ref: string): TableObjects[T]
}

/** A write transaction: reads see its own writes; each write is checked at once and throws if invalid. */
export interface Tx extends ReadTx {
  /** Creates an object (`EXISTS`, `NAME_CONFLICT`, `INVALID_ARGUMENT`); returns it as it will be stored. */
  create<T extends Table>(table: T, object: NewObject<TableObjects[T]>): TableObjects[T]
  /**
   * Replaces an object wholesale. `object.meta.version` must be the version this transaction sees (the stored
   * one, or, once the transaction wrote the object, the version it set: writes set `meta.version` to the
   * version the transaction commits at, as swarm does), else `StoreError` `SEQUENCE` ("update out of
   * sequence"). A task's `status.state` may only move forward.
   */
  update<T extends Table>(table: T, object: TableObjects[T]): TableObjects[T]
  /** Removes an object (`NOT_FOUND`; `IN_USE` for a network, secret or config still referenced). */
  delete(table: Table, id: string): void
}

/** Groups many small transactions into few commits (each up to `maxChangesPerCommit` changes). */
export interface Batch {
  /**
   * Runs `fn` in the batch's open transaction. If `fn` throws, only its own changes are rolled back and the
   * returned promise rejects; the batch goes on. Resolves once `fn`'s changes are staged (or committed,
   * when they filled the commit).
   */
  update<R>(fn: (tx: Tx) => R): Promise<R>
}

/** What a finished `batch()` committed: the last version, the changes, and the number of commits. */
export interface BatchResult {
  /** Store version after the last commit of the batch. */
  version: number
  /** Object changes committed. */
  changes: number
  /** Commits made. */
  commits: number
  /** Errors of callbacks that threw (their changes were rolled back). */
  errors: unknown[]
}

/**
 * Commits a transaction through consensus: resolves once the command is committed (its result, typically
 * the value the state machine's `apply` returned), rejects if it cannot be. `RaftNode.propose` fits.
 */
export type Proposer = (command: Uint8Array, options?: { signal?: AbortSignal }) => Promise<unknown>

/** The outcome of applying one command; every member computes the same one. */
export type ApplyResult =
  | { ok: true; version: number; changes: number }
  | { ok: false; version: number; code: StoreErrorCode; message: string }

/** How a {@link MemoryStore} is built: local (no options) or replicated through a raft `proposer`, with clock, randomness and limits. */
export interface MemoryStoreOptions {
  /**
   * Replicate through this proposer: each transaction becomes one command, applied (through `apply`) on every
   * member in log order. Without it, the store commits locally and numbers versions 1, 2, 3, ….
   */
  proposer?: Proposer
  /** Clock for `meta.createdAt`/`updatedAt` (ms since epoch); the proposer's time travels in the command. */
  clock?: () => number
  /** Random bytes (for command ids); default `node:crypto`. */
  random?: (n: number) => Uint8Array
  /** Recent events kept for watches that resume from a version (default 10,000). */
  historySize?: number
  /** Default queue bound of a watch (default 10,000 events). */
  watchQueueSize?: number
  /** Changes per batch commit (default 200, as swarm). */
  maxChangesPerCommit?: number
  /** Largest command accepted (default 1.5 MiB, swarm's proposal limit). */
  maxCommandBytes?: number
  /**
   * What one service spec may ask for (see {@link SpecLimits}); checked in every transaction that writes a
   * service, so that no spec that would exhaust a manager reaches the log. Default {@link DEFAULT_SPEC_LIMITS}.
   */
  limits?: Partial<SpecLimits>
  /**
   * Called when a replicated transaction has committed: ms from `update()` to its application here (waiting
   * for earlier writes included) and its number of changes. For metrics; it must not throw.
   */
  onCommit?: (info: { ms: number; changes: number }) => void
}

type Waiter = { resolve: (r: ApplyResult) => void; reject: (e: unknown) => void }

const isThenable = (v: unknown): boolean =>
  typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function'

function positiveInt(v: unknown, name: string, min = 1): number {
  if (!Number.isSafeInteger(v) || (v as number) < min) throw rangeError(name, `be an integer >= ${min}`)
  return v as number
}

/**
 * The cluster state: seven tables with indexes, atomic transactions with optimistic concurrency, watches, and
 * the raft state machine interface (`apply`, `snapshot`, `restore`).
 *
 * Writes are serialized: a transaction's callback runs once the previous write has committed (locally, or
 * through the proposer and back through `apply`), so every callback reads the latest committed state.
 */
export class MemoryStore {
  private readonly tables: Tables
  private _version = 0
  private readonly watchers = new Set<Watcher>()
  private readonly history: EventHistory
  private readonly proposer: Proposer | undefined
  private readonly clock: () => number
  private readonly random: (n: number) => Uint8Array
  private readonly watchQueueSize: number
  private readonly maxChanges: number
  private readonly maxCommandBytes: number
  /** The spec limits this store's transactions enforce. */
  readonly limits: Readonly<SpecLimits>
  private readonly onCommit: ((info: { ms: number; changes: number }) => void) | undefined
  private readonly waiters = new Map<number, Waiter>()
  /** Replicated: per proposer, the last command applied and the fence (see `commit`). */
  private proposers = new Map<string, ProposerState>()
  private readonly proposerId: string
  private seq = 0
  private locked = false
  private readonly lockQueue: (() => void)[] = []
  private _closed = false
  private versionWaiters: { version: number; resolve: () => void; reject: (e: unknown) => void }[] = []

  constructor(options: MemoryStoreOptions = {}) {
    if (typeof options !== 'object' || options === null) throw typeError('options', 'be an object')
    if (options.proposer !== undefined && typeof options.proposer !== 'function') {
      throw typeError('options.proposer', 'be a function')
    }
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw typeError('options.clock', 'be a function')
    }
    if (options.random !== undefined && typeof options.random !== 'function') {
      throw typeError('options.random', 'be a function')
    }
    this.proposer = options.proposer
    this.onCommit = options.onCommit
    this.clock = options.clock ?? Date.now
    this.random = options.random ?? randomBytes
    this.history = new EventHistory(positiveInt(options.historySize ?? 10_000, 'options.historySize', 0), 0)
    this.watchQueueSize = positiveInt(options.watchQueueSize ?? 10_000, 'options.watchQueueSize')
    this.maxChanges = positiveInt(options.maxChangesPerCommit ?? 200, 'options.maxChangesPerCommit')
    this.maxCommandBytes = positiveInt(
      options.maxCommandBytes ?? 1536 * 1024,
      'options.maxCommandBytes',
      1024,
    )
    this.limits = specLimits(options.limits, 'options.limits')
    this.tables = Object.fromEntries(TABLES.map((t) => [t, new TableState(INDEXES[t] as never)])) as Tables
    this.proposerId = Buffer.from(this.random(12)).toString('base64url')
  }

  /** The version of the last commit: when replicated, the raft index of the last store command applied. */
  get version(): number {
    return this._version
  }

  get closed(): boolean {
    return this._closed
  }

  /**
   * Resolves once this store has reached `version`, a store version seen elsewhere (in an event, on another
   * member). Raft's no-op and membership entries never reach the store, so do not wait for a raft index here:
   * for a linearizable read, `await node.readIndex()` and then `view`. Rejects with `CLOSED` if the store
   * closes first, `ABORTED` on abort.
   */
  waitForVersion(version: number, options?: { signal?: AbortSignal }): Promise<void> {
    if (!Number.isSafeInteger(version) || version < 0) throw rangeError('version', 'be an integer >= 0')
    if (this._version >= version) return Promise.resolve()
    if (this._closed) return Promise.reject(new StoreError('CLOSED', 'store is closed'))
    const signal = options?.signal
    if (signal?.aborted)
      return Promise.reject(new StoreError('ABORTED', 'wait aborted', { cause: signal.reason }))
    return new Promise((resolve, reject) => {
      const w = {
        version,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        },
        reject: (e: unknown) => {
          signal?.removeEventListener('abort', onAbort)
          reject(e)
        },
      }
      const onAbort = () => {
        this.versionWaiters = this.versionWaiters.filter((x) => x !== w)
        w.reject(new StoreError('ABORTED', 'wait aborted', { cause: signal?.reason }))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.versionWaiters.push(w)
    })
  }

  private setVersion(version: number): void {
    this._version = version
    if (this.versionWaiters.length === 0) return
    const ready = this.versionWaiters.filter((w) => w.version <= version)
    if (ready.length === 0) return
    this.versionWaiters = this.versionWaiters.filter((w) => w.version > version)
    for (const w of ready) w.resolve()
  }

  /** Runs `fn` on a consistent read-only view and returns its result. `fn` must be synchronous. */
  view<R>(fn: (tx: ReadTx) => R): R {
    if (typeof fn !== 'function') throw typeError('fn', 'be a function')
    const r = fn(new TxImpl(this.tables, this._version, false, 0))
    if (isThenable(r)) throw typeError('fn', 'be synchronous (it returned a promise)')
    return r
  }

  /**
   * Runs `fn` as one atomic transaction and commits its changes; resolves with `fn`'s result. If `fn` throws,
   * or the commit fails (`StoreError`: `SEQUENCE`, `NAME_CONFLICT`, `IN_USE`, `PROPOSAL_FAILED`, …), nothing
   * changes. `fn` must be synchronous.
   *
   * Replicated, a transaction reads this member's replica, which may lag behind the log: when a commit from
   * elsewhere changed what `fn` read, the command is refused as it applies, and `fn` runs again on the newer
   * state, up to `attempts` times in all (default 3; 1 turns retries off). So `fn` may run more than once:
   * keep its effects inside `tx` and its return value.
   */
  update<R>(fn: (tx: Tx) => R, options?: { signal?: AbortSignal; attempts?: number }): Promise<R> {
    if (typeof fn !== 'function') throw typeError('fn', 'be a function')
    const attempts = options?.attempts ?? DEFAULT_ATTEMPTS
    if (!Number.isSafeInteger(attempts) || attempts < 1)
      throw rangeError('options.attempts', 'be an integer >= 1')
    if (this._closed) return Promise.reject(new StoreError('CLOSED', 'store is closed'))
    if (options?.signal?.aborted) return Promise.reject(new StoreError('ABORTED', 'update aborted'))
    if (this.proposer === undefined && !this.locked) {
      // Fast path: local commit, nothing queued.
      this.locked = true
      try {
        return Promise.resolve(this.runLocal(fn))
      } catch (err) {
        return Promise.reject(err)
      } finally {
        this.unlock()
      }
    }
    const started = performance.now()
    return this.lock().then(async () => {
      try {
        if (this._closed) throw new StoreError('CLOSED', 'store is closed')
        if (this.proposer === undefined) return this.runLocal(fn)
        for (let attempt = 1; ; attempt++) {
          const tx = new TxImpl(this.tables, this._version, true, this.clock(), this.limits)
          const r = fn(tx)
          if (isThenable(r)) throw typeError('fn', 'be synchronous (it returned a promise)')
          if (tx.size === 0) return r
          try {
            await this.commit(tx.actions(), options?.signal)
            this.onCommit?.({ ms: performance.now() - started, changes: tx.size })
            return r
          } catch (err) {
            // Another member's transaction changed what this one read before it committed (this replica was
            // behind): run it again on the state that is now applied here. A stale object the caller passed
            // in fails again inside `fn`, so a retry never turns a genuinely stale write into a success.
            if (attempt < attempts && err instanceof StoreError && rejectedAtApply.has(err)) continue
            throw err
          }
        }
      } finally {
        this.unlock()
      }
    })
  }

  private runLocal<R>(fn: (tx: Tx) => R): R {
    const now = this.clock()
    const tx = new TxImpl(this.tables, this._version, true, now, this.limits)
    const r = fn(tx)
    if (isThenable(r)) throw typeError('fn', 'be synchronous (it returned a promise)')
    if (tx.size > 0)
      this.applyActions(tx.actions(), this._version + 1, now, false, tx.version === this._version)
    return r
  }

  /**
   * Many small transactions in few commits. `fn` calls `batch.update(tx => …)` as often as it likes (awaiting
   * each is best); changes are committed every `maxChangesPerCommit` changes and when `fn` returns. Each commit
   * is atomic; the batch as a whole is not. If `fn` throws, its uncommitted changes are dropped and the batch
   * rejects; earlier commits stay. While a commit is open the batch holds the store's write lock.
   */
  async batch(
    fn: (batch: Batch) => void | Promise<void>,
    options?: { signal?: AbortSignal },
  ): Promise<BatchResult> {
    if (typeof fn !== 'function') throw typeError('fn', 'be a function')
    if (this._closed) throw new StoreError('CLOSED', 'store is closed')
    const result: BatchResult = { version: this._version, changes: 0, commits: 0, errors: [] }
    let tx: TxImpl | null = null
    let failed: unknown = null
    let chain: Promise<unknown> = Promise.resolve()
    let ended = false
    const flush = async () => {
      const t = tx
      tx = null
      if (!t) return
      try {
        const actions = t.actions()
        if (actions.length > 0) {
          if (this.proposer === undefined)
            this.applyActions(actions, this._version + 1, t.now, false, t.version === this._version)
          else await this.commit(actions, options?.signal)
          result.changes += actions.length
          result.commits++
        }
      } finally {
        this.unlock()
      }
    }
    // Steps that must wait (taking the write lock, flushing a full commit) run in order on `chain`; while none is
    // queued, a callback runs at once in the open transaction.
    let queued = 0
    const enqueue = <R>(step: () => Promise<R>): Promise<R> => {
      queued++
      const p = chain.then(step)
      chain = p.then(
        () => {
          queued--
        },
        () => {
          queued--
        },
      )
      p.catch(() => undefined)
      return p
    }
    const run = <R>(t: TxImpl, cb: (tx: Tx) => R): R => {
      const mark = t.savepoint()
      try {
        const r = cb(t)
        if (isThenable(r)) throw typeError('fn', 'be synchronous (it returned a promise)')
        return r
      } catch (err) {
        t.rollback(mark)
        result.errors.push(err)
        throw err
      }
    }
    const flushFull = async (): Promise<void> => {
      try {
        await flush()
      } catch (err) {
        failed = err
        throw err
      }
    }
    const batch: Batch = {
      update: <R>(cb: (tx: Tx) => R): Promise<R> => {
        if (typeof cb !== 'function') throw typeError('fn', 'be a function')
        if (ended) return Promise.reject(new TypeError('batch: update() called after the batch ended'))
        if (queued === 0 && tx !== null && failed === null) {
          const t: TxImpl = tx
          let r: R
          try {
            r = run(t, cb)
          } catch (err) {
            return Promise.reject(err)
          }
          if (t.size < this.maxChanges) return Promise.resolve(r)
          return enqueue(async () => {
            await flushFull()
            return r
          })
        }
        return enqueue(async () => {
          if (failed) throw failed
          if (!tx) {
            await this.lock()
            if (this._closed) {
              this.unlock()
              throw new StoreError('CLOSED', 'store is closed')
            }
            tx = new TxImpl(this.tables, this._version, true, this.clock(), this.limits)
          }
          const r = run(tx, cb)
          if (tx.size >= this.maxChanges) await flushFull()
          return r
        })
      },
    }
    try {
      await fn(batch)
      await chain
    } catch (err) {
      ended = true
      await chain
      if (tx) {
        tx = null
        this.unlock()
      }
      throw err
    }
    ended = true
    if (failed) {
      if (tx) {
        tx = null
        this.unlock()
      }
      throw failed
    }
    await flush()
    result.version = this._version
    return result
  }

  /** Subscribes to committed changes; see {@link WatchOptions} and {@link Watch}. */
  watch<T extends Table = Table>(options: WatchOptions<T> = {}): Watch<T> {
    if (typeof options !== 'object' || options === null) throw typeError('options', 'be an object')
    if (options.filter !== undefined && typeof options.filter !== 'function') {
      throw typeError('options.filter', 'be a function')
    }
    const queueSize = positiveInt(options.queueSize ?? this.watchQueueSize, 'options.queueSize')
    for (const t of options.table === undefined
      ? []
      : typeof options.table === 'string'
        ? [options.table]
        : options.table) {
      if (!TABLES.includes(t)) throw typeError('options.table', `name a table (not ${String(t)})`)
    }
    let start = this._version
    let replay: StoreEvent[] = []
    if (options.fromVersion !== undefined) {
      const from = options.fromVersion
      if (!Number.isSafeInteger(from) || from < 0)
        throw rangeError('options.fromVersion', 'be an integer >= 0')
      if (from < this.history.floor) {
        throw new StoreError(
          'VERSION_COMPACTED',
          `cannot resume from version ${from}: history starts after version ${this.history.floor}`,
        )
      }
      start = from
      replay = this.history.since(from)
    }
    // The watcher filters by table at runtime, so it only ever yields StoreEvent<T>.
    const w = new Watcher(
      { ...(options as unknown as WatchOptions), queueSize: Math.max(queueSize, replay.length) },
      start,
      (x) => this.watchers.delete(x),
    )
    if (options.signal?.aborted || this._closed) {
      w.close()
      return w as unknown as Watch<T>
    }
    this.watchers.add(w)
    if (replay.length > 0) w.push(replay)
    return w as unknown as Watch<T>
  }

  // ------------------------------------------------------------------------------------------- raft side

  /**
   * Raft state machine: applies one committed command at log `index`. Validation runs against the current
   * state, so every member reaches the same outcome; a command that fails it changes nothing (its proposer's
   * `update` rejects with the reason). Entries at or below the current version are ignored.
   */
  apply(command: Uint8Array, index: number): ApplyResult {
    if (!(command instanceof Uint8Array)) throw typeError('command', 'be a Uint8Array')
    if (!Number.isSafeInteger(index) || index < 1) throw rangeError('index', 'be a positive integer')
    if (index <= this._version) return { ok: true, version: this._version, changes: 0 }
    if (command.length === 0) {
      this.setVersion(index)
      return { ok: true, version: index, changes: 0 }
    }
    let cmd: ReturnType<typeof decodeCommand>
    try {
      cmd = decodeCommand(command, Math.max(this.maxCommandBytes, 4 * 1024 * 1024))
    } catch (err) {
      if (!(err instanceof StoreError)) throw err
      this.setVersion(index)
      return { ok: false, version: index, code: err.code, message: err.message }
    }
    let p = this.proposers.get(cmd.proposer)
    if (!p) this.proposers.set(cmd.proposer, (p = { applied: 0, floor: 0, code: null, message: '' }))
    const mine = cmd.proposer === this.proposerId ? this.waiters.get(cmd.seq) : undefined
    if (cmd.kind === 'fence') {
      this.setVersion(index)
      if (p.applied < cmd.seq) p.floor = Math.max(p.floor, cmd.seq)
      // A fence settles every earlier command of its proposer that has not applied: it never will.
      if (cmd.proposer === this.proposerId) {
        for (const [seq, w] of this.waiters) {
          if (seq <= p.floor && seq > p.applied) {
            this.waiters.delete(seq)
            w.resolve({ ok: false, version: index, code: 'PROPOSAL_FAILED', message: CANCELLED })
          }
        }
      }
      return { ok: true, version: index, changes: 0 }
    }
    let result: ApplyResult
    if (cmd.seq <= p.floor) {
      this.setVersion(index)
      result = { ok: false, version: index, code: 'PROPOSAL_FAILED', message: CANCELLED }
    } else {
      try {
        // Spec limits are not checked again here: they are each manager's configuration, and every member
        // must apply a committed command alike. The proposing transaction checked them.
        const check = new TxImpl(this.tables, this._version, true, cmd.time)
        check.loadAndValidate(cmd.actions)
        this.applyActions(cmd.actions, index, cmd.time, true)
        result = { ok: true, version: index, changes: cmd.actions.length }
      } catch (err) {
        if (!(err instanceof StoreError)) throw err
        this.setVersion(index)
        result = { ok: false, version: index, code: err.code, message: err.message }
      }
      p.applied = Math.max(p.applied, cmd.seq)
      p.code = result.ok ? null : result.code
      p.message = result.ok ? '' : result.message
    }
    if (mine) {
      this.waiters.delete(cmd.seq)
      mine.resolve(result)
    }
    return result
  }

  /** Raft state machine: the whole state, encoded (msgpack) with its version. */
  snapshot(): Uint8Array {
    const tables = {} as Record<Table, Record<string, any>[]>
    for (const t of TABLES) tables[t] = [...this.tables[t].objects.values()]
    return encodeSnapshot({ version: this._version, tables, proposers: Object.fromEntries(this.proposers) })
  }

  /**
   * Raft state machine: replaces the whole state with a snapshot. Watches stay open and receive the
   * differences as create/update/delete events at the snapshot's version; the resume history restarts there.
   */
  restore(snapshot: Uint8Array): void {
    const s = decodeSnapshot(snapshot)
    const fresh = Object.fromEntries(TABLES.map((t) => [t, new TableState(INDEXES[t] as never)])) as Tables
    for (const t of TABLES) {
      for (const raw of s.tables[t]) {
        validateObject(t, raw)
        const meta = raw.meta
        if (typeof meta !== 'object' || meta === null || !Number.isSafeInteger(meta.version)) {
          throw new StoreError('CORRUPT', `malformed store snapshot: ${t} object without meta.version`)
        }
        const o = freezeDeep(raw) as { id: string }
        if (fresh[t].objects.has(o.id))
          throw new StoreError('CORRUPT', `malformed store snapshot: duplicate ${o.id}`)
        fresh[t].put(o.id, undefined, o as never)
      }
    }
    const events: StoreEvent[] = []
    for (const t of TABLES) {
      const before = this.tables[t].objects
      const after = fresh[t].objects as Map<string, any>
      for (const [id, o] of after) {
        const old = before.get(id) as any
        if (!old) events.push({ action: 'create', table: t, version: s.version, object: o } as StoreEvent)
        else if (old.meta.version !== o.meta.version) {
          events.push({
            action: 'update',
            table: t,
            version: s.version,
            object: o,
            oldObject: old,
          } as StoreEvent)
        }
      }
      for (const [id, old] of before) {
        if (!after.has(id))
          events.push({ action: 'delete', table: t, version: s.version, object: old } as StoreEvent)
      }
    }
    for (const t of TABLES) (this.tables as Record<Table, TableState<any>>)[t] = fresh[t]
    this.setVersion(s.version)
    this.history.reset(s.version)
    this.proposers = new Map(Object.entries(s.proposers))
    // Settle this store's own command if the snapshot already covers it.
    const mine = this.proposers.get(this.proposerId)
    if (mine) {
      for (const [seq, w] of this.waiters) {
        if (seq === mine.applied) {
          this.waiters.delete(seq)
          w.resolve(
            mine.code === null
              ? { ok: true, version: s.version, changes: 0 }
              : { ok: false, version: s.version, code: mine.code as StoreErrorCode, message: mine.message },
          )
        } else if (seq <= mine.floor || seq < mine.applied) {
          this.waiters.delete(seq)
          w.resolve({ ok: false, version: s.version, code: 'PROPOSAL_FAILED', message: CANCELLED })
        }
      }
    }
    for (const w of this.watchers) w.rebase()
    this.deliver(events)
  }

  /** Closes every watch and rejects later writes; reads keep working. */
  close(): void {
    if (this._closed) return
    this._closed = true
    for (const w of [...this.watchers]) w.close()
    const waiting = this.versionWaiters
    this.versionWaiters = []
    for (const w of waiting) w.reject(new StoreError('CLOSED', 'store is closed'))
    for (const [seq, w] of this.waiters) {
      this.waiters.delete(seq)
      w.reject(new StoreError('OUTCOME_UNKNOWN', 'store closed while a transaction was in flight'))
    }
  }

  // ------------------------------------------------------------------------------------------- internals

  private lock(): Promise<void> {
    if (!this.locked) {
      this.locked = true
      return Promise.resolve()
    }
    return new Promise((resolve) => this.lockQueue.push(resolve))
  }

  private unlock(): void {
    const next = this.lockQueue.shift()
    if (next) next()
    else this.locked = false
  }

  /**
   * Proposes `actions` as one command and waits until this member has applied it. If the proposer fails in a
   * way that leaves the outcome open (leadership lost, stopped, aborted), a fence is proposed: whichever of the
   * two applies first decides, identically on every member, whether the transaction happened. Only if even
   * the fence cannot be committed does the caller get `OUTCOME_UNKNOWN`.
   */
  private async commit(actions: Action[], signal: AbortSignal | undefined): Promise<void> {
    const seq = ++this.seq
    const command = encodeCommand({ kind: 'tx', proposer: this.proposerId, seq, time: this.clock(), actions })
    if (command.length > this.maxCommandBytes) {
      throw new StoreError(
        'INVALID_ARGUMENT',
        `transaction too large: ${command.length} bytes encoded, the limit is ${this.maxCommandBytes}`,
      )
    }
    const applied = new Promise<ApplyResult>((resolve, reject) => this.waiters.set(seq, { resolve, reject }))
    applied.catch(() => undefined)
    try {
      await this.proposer!(command, signal ? { signal } : undefined)
    } catch (err) {
      if (this.waiters.has(seq)) {
        if (definitelyNotCommitted(err)) {
          this.waiters.delete(seq)
          throw new StoreError('PROPOSAL_FAILED', `the transaction was not committed: ${errorMessage(err)}`, {
            cause: err,
          })
        }
        await this.fence(seq, err)
      }
    }
    const result = await applied
    if (!result.ok) {
      const err = new StoreError(
        result.code,
        result.message,
        result.code === 'PROPOSAL_FAILED' ? { detail: 'cancelled' } : undefined,
      )
      if (result.code !== 'PROPOSAL_FAILED') rejectedAtApply.add(err)
      throw err
    }
  }

  private async fence(seq: number, cause: unknown): Promise<void> {
    const fence = encodeCommand({ kind: 'fence', proposer: this.proposerId, seq })
    let last: unknown = cause
    for (let attempt = 0; attempt < FENCE_ATTEMPTS && this.waiters.has(seq) && !this._closed; attempt++) {
      try {
        await this.proposer!(fence)
        return
      } catch (err) {
        last = err
      }
    }
    const w = this.waiters.get(seq)
    if (w) {
      this.waiters.delete(seq)
      w.reject(
        new StoreError(
          'OUTCOME_UNKNOWN',
          `the transaction may or may not have committed: ${errorMessage(cause)}; settling it failed: ${errorMessage(last)}`,
          { cause },
        ),
      )
    }
  }

  /**
   * Applies squashed, validated actions at `version`: sets meta, freezes, indexes, then delivers events. A local
   * transaction's objects are frozen (a copy is made if their meta needs setting); `decoded` ones (from a
   * command) are fresh and the store's own, so meta is set on them before they are frozen. `unchanged`: no
   * commit happened since the transaction opened.
   */
  private applyActions(
    actions: readonly (Action & Pick<Entry, 'base'>)[],
    version: number,
    time: number,
    decoded = false,
    unchanged = false,
  ): void {
    const events: StoreEvent[] = new Array(actions.length)
    // Objects written in one commit with the same creation time share one frozen meta (all it holds is equal):
    // a commit of many creates, or of updates to objects created together, builds a handful, not one each.
    let meta: { version: number; createdAt: number; updatedAt: number } | undefined
    for (let i = 0; i < actions.length; i++) {
      const a = actions[i]!
      const state = this.tables[a.table] as TableState<any>
      // What the transaction started from is still stored when nothing committed since it opened.
      const prev = unchanged && a.base !== undefined ? (a.base ?? undefined) : state.objects.get(a.id)
      if (a.op === Op.Delete) {
        state.put(a.id, prev, undefined)
        events[i] = { action: 'delete', table: a.table, version, object: prev } as StoreEvent
        continue
      }
      const createdAt: number = prev ? prev.meta.createdAt : time
      let o = a.object!
      const m = o.meta
      const newSpec = a.table === 'services' && (o.specVersion === undefined || o.specVersion.index === 0)
      // A local transaction's objects are frozen and usually carry the right meta already: stored as they are.
      if (decoded || newSpec || m.version !== version || m.createdAt !== createdAt || m.updatedAt !== time) {
        if (!decoded) o = { ...o }
        if (meta?.createdAt !== createdAt) meta = Object.freeze({ version, createdAt, updatedAt: time })
        o.meta = meta
        if (newSpec) o.specVersion = Object.freeze({ index: version })
        if (decoded) freezeDeep(o)
        else Object.freeze(o)
      }
      state.put(a.id, prev, o)
      events[i] = (
        prev
          ? { action: 'update', table: a.table, version, object: o, oldObject: prev }
          : { action: 'create', table: a.table, version, object: o }
      ) as StoreEvent
    }
    this.setVersion(version)
    this.deliver(events)
  }

  private deliver(events: StoreEvent[]): void {
    if (events.length === 0) return
    this.history.push(events)
    for (const w of this.watchers) w.push(events)
  }
}

/** Commits refused by validation at apply time (the state changed after the transaction read it). */
const rejectedAtApply = new WeakSet<StoreError>()
/** How often a replicated `update` runs its transaction when another member's commit got in first. */
const DEFAULT_ATTEMPTS = 3
const CANCELLED = 'the transaction was not committed (its proposal failed and was fenced off)'
const FENCE_ATTEMPTS = 3

/** Raft errors that guarantee the command is not in the log and never will be. */
function definitelyNotCommitted(err: unknown): boolean {
  if (typeof err !== 'object' || err === null || (err as { name?: unknown }).name !== 'RaftError')
    return false
  const code = (err as { code?: unknown }).code
  return code === 'PROPOSAL_DROPPED' || code === 'TOO_LARGE' || code === 'NO_LEADER'
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** A new in-memory store (see {@link MemoryStore}). */
export function memoryStore(options?: MemoryStoreOptions): MemoryStore {
  return new MemoryStore(options)
}
