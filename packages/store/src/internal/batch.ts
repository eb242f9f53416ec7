// Batches: many small transactions grouped into few commits of up to maxChangesPerCommit changes each, as
// swarm's store batches do. Each commit is atomic, the batch is not; a callback that throws loses only its
// own changes (rolled back to a savepoint of the open transaction).
import { StoreError } from '../errors.js'
import type { Batch, BatchResult, Tx } from '../store-types.js'
import { typeError } from './check.js'
import type { Action } from './codec.js'
import type { TxImpl } from './tx.js'

/** What a batch needs of its store. */
export interface BatchHost {
  closed(): boolean
  version(): number
  /** Replicated (commits go through the proposer) or local. */
  readonly replicated: boolean
  /** Changes per commit. */
  readonly maxChanges: number
  lock(): Promise<void>
  unlock(): void
  /** A write transaction on the latest committed state (the caller holds the lock). */
  openTx(): TxImpl
  /** Commits a transaction's actions locally, at once. */
  applyLocal(actions: ReturnType<TxImpl['actions']>, tx: TxImpl): void
  /** Commits actions through the proposer and waits until they applied here. */
  commit(actions: Action[], signal: AbortSignal | undefined): Promise<void>
}

const isThenable = (v: unknown): boolean =>
  typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function'

/** Runs `fn` with a {@link Batch} (see `ClusterStore.batch`). */
export async function runBatch(
  host: BatchHost,
  fn: (batch: Batch) => void | Promise<void>,
  options?: { signal?: AbortSignal },
): Promise<BatchResult> {
  if (typeof fn !== 'function') throw typeError('fn', 'be a function')
  if (host.closed()) throw new StoreError('CLOSED', 'store is closed')
  const result: BatchResult = { version: host.version(), changes: 0, commits: 0, errors: [] }
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
        if (!host.replicated) host.applyLocal(actions, t)
        else await host.commit(actions, options?.signal)
        result.changes += actions.length
        result.commits++
      }
    } finally {
      host.unlock()
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
        if (t.size < host.maxChanges) return Promise.resolve(r)
        return enqueue(async () => {
          await flushFull()
          return r
        })
      }
      return enqueue(async () => {
        if (failed) throw failed
        if (!tx) {
          await host.lock()
          if (host.closed()) {
            host.unlock()
            throw new StoreError('CLOSED', 'store is closed')
          }
          tx = host.openTx()
        }
        const r = run(tx, cb)
        if (tx.size >= host.maxChanges) await flushFull()
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
      host.unlock()
    }
    throw err
  }
  ended = true
  if (failed) {
    if (tx) {
      tx = null
      host.unlock()
    }
    throw failed
  }
  await flush()
  result.version = host.version()
  return result
}
