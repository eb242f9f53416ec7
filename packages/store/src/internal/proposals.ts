// The proposing side of a replicated store: each transaction becomes one command with this store's proposer
// id and a sequence number, and waits until it applies here. When the proposer fails with the outcome open,
// a fence settles it identically on every member. The applying side (in the store) settles the waiters.

import type { StoreErrorCode } from '../errors.js'
import { StoreError } from '../errors.js'
import type { ApplyResult, Proposer } from '../store-types.js'
import { type Action, encodeCommand, type ProposerState } from './codec.js'

/** A command of this store's waiting to apply here. */
export interface Waiter {
  resolve: (r: ApplyResult) => void
  reject: (e: unknown) => void
}

/** This store's commands in flight, and how they are proposed and fenced. */
export class Proposals {
  private seq = 0
  /** This store's commands not yet applied here, by sequence number. */
  readonly waiters = new Map<number, Waiter>()

  constructor(
    /** This store's id as a proposer (random per store instance). */
    readonly id: string,
    private readonly proposer: Proposer | undefined,
    private readonly clock: () => number,
    private readonly maxCommandBytes: number,
    private readonly closed: () => boolean,
  ) {}

  /**
   * Proposes `actions` as one command and waits until this member has applied it. If the proposer fails in a
   * way that leaves the outcome open (leadership lost, stopped, aborted), a fence is proposed: whichever of the
   * two applies first decides, identically on every member, whether the transaction happened. Only if even
   * the fence cannot be committed does the caller get `OUTCOME_UNKNOWN`.
   */
  async commit(actions: Action[], signal: AbortSignal | undefined): Promise<void> {
    const seq = ++this.seq
    const command = encodeCommand({ kind: 'tx', proposer: this.id, seq, time: this.clock(), actions })
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

  /** A fence of this store's applied: its commands above `applied` and up to `floor` never will. */
  settleFenced(floor: number, applied: number, version: number): void {
    for (const [seq, w] of this.waiters) {
      if (seq <= floor && seq > applied) {
        this.waiters.delete(seq)
        w.resolve({ ok: false, version, code: 'PROPOSAL_FAILED', message: CANCELLED })
      }
    }
  }

  /** A snapshot at `version` replaced the state: settles the commands its entry for this store covers. */
  settleFromSnapshot(mine: ProposerState, version: number): void {
    for (const [seq, w] of this.waiters) {
      if (seq === mine.applied) {
        this.waiters.delete(seq)
        w.resolve(
          mine.code === null
            ? { ok: true, version, changes: 0 }
            : { ok: false, version, code: mine.code as StoreErrorCode, message: mine.message },
        )
      } else if (seq <= mine.floor || seq < mine.applied) {
        this.waiters.delete(seq)
        w.resolve({ ok: false, version, code: 'PROPOSAL_FAILED', message: CANCELLED })
      }
    }
  }

  /** The store closed: the outcome of every command still in flight is unknown. */
  rejectAll(): void {
    for (const [seq, w] of this.waiters) {
      this.waiters.delete(seq)
      w.reject(new StoreError('OUTCOME_UNKNOWN', 'store closed while a transaction was in flight'))
    }
  }

  private async fence(seq: number, cause: unknown): Promise<void> {
    const fence = encodeCommand({ kind: 'fence', proposer: this.id, seq })
    let last: unknown = cause
    for (let attempt = 0; attempt < FENCE_ATTEMPTS && this.waiters.has(seq) && !this.closed(); attempt++) {
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
}

/** Commits refused by validation at apply time (the state changed after the transaction read it). */
export const rejectedAtApply = new WeakSet<StoreError>()
/** Why a fenced-off command did not commit. */
export const CANCELLED = 'the transaction was not committed (its proposal failed and was fenced off)'
const FENCE_ATTEMPTS = 3

/** Raft errors that guarantee the command is not in the log and never will be. */
function definitelyNotCommitted(err: unknown): boolean {
  if (typeof err !== 'object' || err === null || (err as { name?: unknown }).name !== 'RaftError')
    return false
  const code = (err as { code?: unknown }).code
  if ((err as { neverProposed?: unknown }).neverProposed === true) return true
  return code === 'PROPOSAL_DROPPED' || code === 'TOO_LARGE' || code === 'NO_LEADER'
}

/** An error's message, or the thrown value as text. */
function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
