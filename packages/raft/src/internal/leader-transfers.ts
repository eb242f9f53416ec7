// Callers of RaftNode.transferLeadership waiting to see the new leader: resolved when one is elected (the one
// they named, or any other when they named none), rejected with TRANSFER_FAILED when another won or the
// transfer took longer than its deadline.
import { RaftError } from '../errors.js'

interface TransferWaiter {
  readonly target: string
  /** The caller named the target (otherwise any other new leader will do). */
  readonly explicit: boolean
  readonly resolve: () => void
  readonly reject: (e: Error) => void
  readonly deadline: number
}

export class LeaderTransfers {
  private waiters: TransferWaiter[] = []

  /** Resolves once a new leader is seen (`target`, when `explicit`). */
  wait(target: string, explicit: boolean, deadline: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ target, explicit, resolve, reject, deadline })
    })
  }

  /** `leader`, another member, became leader. */
  leaderElected(leader: string): void {
    if (this.waiters.length === 0) return
    const ts = this.waiters
    this.waiters = []
    for (const t of ts) {
      if (t.target === leader || !t.explicit) t.resolve()
      else t.reject(new RaftError('TRANSFER_FAILED', `${leader} became leader instead of ${t.target}`))
    }
  }

  checkDeadlines(now: number): void {
    if (this.waiters.length === 0) return
    this.waiters = this.waiters.filter((t) => {
      if (now < t.deadline) return true
      t.reject(new RaftError('TRANSFER_FAILED', `leadership did not move to ${t.target}`))
      return false
    })
  }

  failAll(err: RaftError): void {
    for (const t of this.waiters) t.reject(err)
    this.waiters = []
  }
}
