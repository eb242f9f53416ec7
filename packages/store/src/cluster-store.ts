// The cluster store: swarm's replicated cluster state (swarmkit's store.MemoryStore). Seven tables with
// indexes, serialized write transactions, watches, and the raft state machine side (apply, snapshot,
// restore). Its parts live apart: the public types in store-types.ts; batches, the proposing side of
// replication, snapshots, the write lock and version waiters in internal/.
import { randomBytes } from 'node:crypto'
import { StoreError } from './errors.js'
import { type BatchHost, runBatch } from './internal/batch.js'
import { rangeError, typeError } from './internal/check.js'
import { type Action, decodeCommand, Op, type ProposerState } from './internal/codec.js'
import type { TableState } from './internal/indexes.js'
import { Interner } from './internal/intern.js'
import { CANCELLED, Proposals, rejectedAtApply } from './internal/proposals.js'
import { defaultSlicing, runAtOnce, runSliced } from './internal/slices.js'
import {
  captureState,
  emptyTables,
  encodeStateSteps,
  type RestoredState,
  restoreSteps,
} from './internal/snapshot.js'
import { type Entry, type Tables, TxImpl } from './internal/tx.js'
import { VersionWaiters } from './internal/version-waiters.js'
import { EventHistory, Watcher } from './internal/watcher.js'
import { WriteLock } from './internal/write-lock.js'
import { type SpecLimits, specLimits } from './service-spec.js'
import type {
  ApplyResult,
  Batch,
  BatchResult,
  ClusterStoreOptions,
  Proposer,
  ReadTx,
  Tx,
} from './store-types.js'
import { TABLES, type Table } from './types.js'
import type { StoreEvent, Watch, WatchOptions } from './watch.js'

const isThenable = (v: unknown): boolean =>
  typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function'

function positiveInt(v: unknown, name: string, min = 1): number {
  if (!Number.isSafeInteger(v) || (v as number) < min) throw rangeError(name, `be an integer >= ${min}`)
  return v as number
}

/** How often a replicated `update` runs its transaction when another member's commit got in first. */
const DEFAULT_ATTEMPTS = 3

/** The largest encoded transaction a store proposes by default: 1.5 MiB, swarm's limit. */
export const DEFAULT_MAX_COMMAND_BYTES = 1536 * 1024

/**
 * The cluster state: seven tables with indexes, atomic transactions with optimistic concurrency, watches, and
 * the raft state machine interface (`apply`, `snapshot`, `restore`). This is the store a manager runs in
 * production: with a `proposer` (`RaftNode.propose`) every transaction is one raft command applied in log
 * order on every manager; without one it commits locally (a single process, tests). Its state lives in
 * memory, as swarmkit's `store.MemoryStore` does, and is made durable by the raft log and snapshots.
 * Formerly named `MemoryStore` (still exported as a deprecated alias).
 *
 * Writes are serialized: a transaction's callback runs once the previous write has committed (locally, or
 * through the proposer and back through `apply`), so every callback reads the latest committed state.
 */
export class ClusterStore {
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
  /** This store's own commands in flight (replicated). */
  private readonly proposals: Proposals
  /** Replicated: per proposer, the last command applied and the fence (see `Proposals.commit`). */
  private proposers = new Map<string, ProposerState>()
  private readonly writeLock = new WriteLock()
  /** How snapshotAsync and restoreAsync slice their work (shared; tests count its pauses). */
  private readonly slicing = defaultSlicing
  private _closed = false
  private readonly versionWaiters = new VersionWaiters()
  /** Decoded objects share equal parts and own their strings (internal/intern.ts). */
  private readonly interner = new Interner()
  /** A `restoreAsync` is under way: the tables it compares against must not change until it installs. */
  private restoring = false

  constructor(options: ClusterStoreOptions = {}) {
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
      options.maxCommandBytes ?? DEFAULT_MAX_COMMAND_BYTES,
      'options.maxCommandBytes',
      1024,
    )
    this.limits = specLimits(options.limits, 'options.limits')
    this.tables = emptyTables()
    this.proposals = new Proposals(
      Buffer.from(this.random(12)).toString('base64url'),
      this.proposer,
      this.clock,
      this.maxCommandBytes,
      () => this._closed,
    )
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
    return this.versionWaiters.wait(version, signal)
  }

  private setVersion(version: number): void {
    this._version = version
    this.versionWaiters.reached(version)
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
    if (this.proposer === undefined && this.writeLock.tryAcquire()) {
      // Fast path: local commit, nothing queued.
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
            await this.proposals.commit(tx.actions(), options?.signal)
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
  batch(
    fn: (batch: Batch) => void | Promise<void>,
    options?: { signal?: AbortSignal },
  ): Promise<BatchResult> {
    return runBatch(this.batchHost(), fn, options)
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
    if (this.restoring) throw new Error('apply called while restoreAsync is under way (raft orders them)')
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
    const mine = cmd.proposer === this.proposals.id ? this.proposals.waiters.get(cmd.seq) : undefined
    if (cmd.kind === 'fence') {
      this.setVersion(index)
      if (p.applied < cmd.seq) p.floor = Math.max(p.floor, cmd.seq)
      // A fence settles every earlier command of its proposer that has not applied: it never will.
      if (cmd.proposer === this.proposals.id) this.proposals.settleFenced(p.floor, p.applied, index)
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
        // The entries hold the whole objects and the stored ones they replace (nothing changed since).
        this.applyActions(check.actions(), index, cmd.time, true, true)
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
      this.proposals.waiters.delete(cmd.seq)
      mine.resolve(result)
    }
    return result
  }

  /**
   * Raft state machine: the whole state, encoded (msgpack) with its version, in one synchronous call. A large
   * store holds the event loop for as long as that takes (about 6 us per object): raft should be given
   * `snapshotAsync` (see {@link ClusterStore.stateMachine}).
   */
  snapshot(): Uint8Array {
    return runAtOnce(encodeStateSteps(captureState(this.tables, this._version, this.proposers)))
  }

  /**
   * The whole state as of this call, encoded in time slices of a few milliseconds between which the event loop
   * runs (and commits go on): the same bytes `snapshot()` returns at the moment of the call. Only listing the
   * tables' objects happens at once (they are frozen, so nothing else is copied). Rejects with `ABORTED` on
   * abort.
   */
  snapshotAsync(options?: { signal?: AbortSignal }): Promise<Uint8Array> {
    const signal = options?.signal
    if (signal?.aborted) return Promise.reject(new StoreError('ABORTED', 'snapshot aborted'))
    const state = captureState(this.tables, this._version, this.proposers)
    return runSliced(encodeStateSteps(state), this.slicing, undefined, () =>
      signal?.aborted ? new StoreError('ABORTED', 'snapshot aborted') : undefined,
    )
  }

  /**
   * Raft state machine: replaces the whole state with a snapshot, in one synchronous call (see
   * `restoreAsync`). Watches stay open and receive the differences as create/update/delete events at the
   * snapshot's version; the resume history restarts there. `CORRUPT` for a malformed snapshot,
   * `UNSUPPORTED` for a store snapshot of a format this store does not read; either way nothing changes.
   */
  restore(snapshot: Uint8Array): void {
    if (this.restoring) throw new Error('restore called while restoreAsync is under way')
    this.install(runAtOnce(restoreSteps(snapshot, this.tables, this.interner)))
  }

  /**
   * `restore` in time slices: the snapshot is decoded, checked and indexed aside, and the events worked out,
   * a few milliseconds at a time; then the new state replaces the old at once and the watches get their
   * events, all before the promise resolves. Reads see the old state until then. Nothing may commit
   * meanwhile: raft applies nothing while a restore it started is under way (`apply` throws if called), and a
   * store without a proposer holds its write lock for the restore. Rejects like `restore`, or with `ABORTED`
   * (nothing changed).
   */
  async restoreAsync(snapshot: Uint8Array, options?: { signal?: AbortSignal }): Promise<void> {
    if (!(snapshot instanceof Uint8Array)) throw typeError('snapshot', 'be a Uint8Array')
    if (this.restoring) throw new Error('restoreAsync called while another is under way')
    const signal = options?.signal
    const aborted = () => (signal?.aborted ? new StoreError('ABORTED', 'restore aborted') : undefined)
    const local = this.proposer === undefined
    if (local) await this.lock()
    this.restoring = true
    try {
      const stop = aborted()
      if (stop) throw stop
      const r = await runSliced(
        restoreSteps(snapshot, this.tables, this.interner),
        this.slicing,
        undefined,
        aborted,
      )
      this.restoring = false
      this.install(r)
    } finally {
      this.restoring = false
      if (local) this.unlock()
    }
  }

  /**
   * This store as raft's state machine, snapshotting and restoring in time slices (`snapshotAsync`,
   * `restoreAsync`) so that a large store never holds the event loop for long: give it to `RaftNode` as
   * `stateMachine` rather than the store itself.
   */
  stateMachine(): {
    apply(command: Uint8Array, index: number): ApplyResult
    snapshot(): Promise<Uint8Array>
    restore(snapshot: Uint8Array): Promise<void>
  } {
    return {
      apply: (command, index) => this.apply(command, index),
      snapshot: () => this.snapshotAsync(),
      restore: (snapshot) => this.restoreAsync(snapshot),
    }
  }

  /** Replaces the state with a decoded snapshot and tells the watches. */
  private install(s: RestoredState): void {
    for (const t of TABLES) (this.tables as Record<Table, TableState<any>>)[t] = s.tables[t]
    this.setVersion(s.version)
    this.history.reset(s.version)
    this.proposers = new Map(Object.entries(s.proposers))
    // Settle this store's own command if the snapshot already covers it.
    const mine = this.proposers.get(this.proposals.id)
    if (mine) this.proposals.settleFromSnapshot(mine, s.version)
    for (const w of this.watchers) w.rebase()
    this.deliver(s.events)
  }

  /** Closes every watch and rejects later writes; reads keep working. */
  close(): void {
    if (this._closed) return
    this._closed = true
    for (const w of [...this.watchers]) w.close()
    this.versionWaiters.rejectAll(() => new StoreError('CLOSED', 'store is closed'))
    this.proposals.rejectAll()
  }

  // ------------------------------------------------------------------------------------------- internals

  private lock(): Promise<void> {
    return this.writeLock.acquire()
  }

  private unlock(): void {
    this.writeLock.release()
  }

  /** What `batch` needs of this store (see internal/batch.ts). */
  private batchHost(): BatchHost {
    return {
      closed: () => this._closed,
      version: () => this._version,
      replicated: this.proposer !== undefined,
      maxChanges: this.maxChanges,
      lock: () => this.lock(),
      unlock: () => this.unlock(),
      openTx: () => new TxImpl(this.tables, this._version, true, this.clock(), this.limits),
      applyLocal: (actions, t) =>
        this.applyActions(actions, this._version + 1, t.now, false, t.version === this._version),
      commit: (actions, signal) => this.proposals.commit(actions, signal),
    }
  }

  /**
   * Applies squashed, validated actions at `version`: sets meta, freezes, indexes, then delivers events. A local
   * transaction's objects are frozen (a copy is made if their meta needs setting); `decoded` ones (from a
   * command) are fresh and the store's own, so meta is set on them before they are frozen. `unchanged`: no
   * commit happened since the transaction opened.
   */
  private applyActions(
    actions: readonly (Action & Pick<Entry, 'base' | 'changed'>)[],
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
        if (decoded) this.interner.object(a.table, o, prev, a.changed)
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

/** A new cluster store (see {@link ClusterStore}). */
export function clusterStore(options?: ClusterStoreOptions): ClusterStore {
  return new ClusterStore(options)
}
