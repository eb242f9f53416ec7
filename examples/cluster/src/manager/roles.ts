// Role reconciliation on the leader: `docker node promote` / `demote` change a node's spec.role, and the
// leader makes raft membership and the store agree with it (a promoted node becomes a learner, then a voter;
// a demoted one leaves raft, then becomes a worker in the store).

import type { RaftNode } from '@swarmkit/raft'
import type { ClusterStore, Node } from '@swarmkit/store'
import { CONTROL_ADDR_LABEL, RAFT_ADDR_LABEL } from '../labels.js'

export interface RoleReconcilerOptions {
  readonly store: ClusterStore
  readonly raft: RaftNode
  /** This manager's raft member ID. */
  readonly raftId: string
  /** Whether this manager leads now (raft's view). */
  readonly isLeader: () => boolean
  /** Whether the leader duties still run (false once stepped down or closed). */
  readonly active: () => boolean
  readonly closed: () => boolean
  readonly log: (line: string) => void
}

export class RoleReconciler {
  readonly #o: RoleReconcilerOptions
  readonly #promoting = new Set<string>()
  #roleWatch: AbortController | undefined
  #roleTimer: ReturnType<typeof setTimeout> | undefined
  #reconciling: Promise<void> | undefined
  #reconcileAgain = false
  #transferring = false
  /** Raft member IDs raft would not take (removed once). */
  readonly #refused = new Set<string>()

  constructor(options: RoleReconcilerOptions) {
    this.#o = options
  }

  /**
   * Makes raft learner `id` a voter once it has caught up: raft's promote waits for that, and is asked
   * again (with backoff) for as long as this manager leads and `id` is still a learner, however slow the
   * learner is. One attempt chain per member.
   */
  async promote(id: string): Promise<void> {
    if (this.#promoting.has(id)) return
    this.#promoting.add(id)
    const { raft, log } = this.#o
    try {
      for (let attempt = 1, delay = 100; !this.#o.closed() && this.#o.isLeader(); attempt++) {
        if (!raft.members().learners.includes(id)) return
        try {
          await raft.promote(id)
          log(`manager ${id} is a raft voter`)
          return
        } catch (err) {
          if (attempt % 10 === 0) log(`promoting ${id} not done yet: ${(err as Error).message}`)
          await new Promise((r) => setTimeout(r, delay))
          delay = Math.min(2 * delay, 2000)
        }
      }
    } finally {
      this.#promoting.delete(id)
    }
  }

  /** On the leader: follows node changes and reconciles raft membership with the managers in the store. */
  start(): void {
    this.#roleWatch = new AbortController()
    const watch = this.#o.store.watch({ table: 'nodes', signal: this.#roleWatch.signal })
    void (async () => {
      try {
        this.#reconcileRoles()
        for await (const _ of watch) if (watch.pending === 0) this.#reconcileRoles()
      } catch (err) {
        if (this.#o.active()) this.#o.log(`role watch ended: ${(err as Error).message}`)
      }
    })()
  }

  stop(): void {
    this.#roleWatch?.abort()
    this.#roleWatch = undefined
    clearTimeout(this.#roleTimer)
  }

  /** Runs one reconciliation at a time; a request during a run runs once more after it. */
  #reconcileRoles(): void {
    if (this.#reconciling) {
      this.#reconcileAgain = true
      return
    }
    this.#reconciling = this.#reconcileOnce()
      .catch((err) => this.#o.log(`role reconciliation failed: ${(err as Error).message}`))
      .then((pending) => {
        this.#reconciling = undefined
        if (!this.#o.active()) return
        if (this.#reconcileAgain) {
          this.#reconcileAgain = false
          this.#reconcileRoles()
        } else if (pending) {
          // A change that could not be made yet (e.g. removing a voter would cost the quorum): try again.
          clearTimeout(this.#roleTimer)
          this.#roleTimer = setTimeout(() => this.#reconcileRoles(), 500)
          this.#roleTimer.unref?.()
        }
      })
  }

  /**
   * Promoted nodes (role manager, not in raft yet) become learners, then voters; demoted ones (spec.role
   * worker) leave raft and then become workers in the store. The leader hands leadership to another voter
   * before it removes itself. Returns whether work is left for later.
   */
  async #reconcileOnce(): Promise<boolean> {
    const { store, raft, log } = this.#o
    // Only nodes that are managers in the store have anything to reconcile (both cases below): the role
    // index, not every node (each commit of a join storm ran this over all of them).
    const nodes = store.view((tx) => tx.find('nodes', { role: 'manager' }))
    const { voters, learners } = raft.members()
    const members = new Set([...voters, ...learners])
    let pending = false
    for (const n of nodes) {
      if (this.#o.closed() || !this.#o.isLeader()) return false
      const raftId = n.managerStatus?.raftId
      if (n.spec.role === 'manager' && n.role === 'manager' && raftId) {
        if (learners.includes(raftId)) void this.promote(raftId)
        if (members.has(raftId)) continue
        const address = n.description?.engine.labels[RAFT_ADDR_LABEL]
        if (!address) continue
        if (this.#refused.has(raftId)) continue
        try {
          await raft.addMember(raftId, { address })
          log(`node ${n.id} is a raft learner (${raftId} at ${address})`)
          void this.promote(raftId)
        } catch (err) {
          // Raft refuses an ID it removed once (RangeError): never again. Anything else: try later.
          if (err instanceof RangeError) this.#refused.add(raftId)
          else pending = true
          log(`adding ${n.id} to raft failed: ${(err as Error).message}`)
        }
      } else if (n.spec.role === 'worker' && n.role === 'manager') {
        pending = true
        if (raftId === this.#o.raftId) {
          // The leader is being demoted: another voter takes over and finishes the demotion.
          if (!this.#transferring && voters.length > 1) {
            this.#transferring = true
            void raft
              .transferLeadership()
              .catch((err) => log(`leadership transfer failed: ${(err as Error).message}`))
              .finally(() => {
                this.#transferring = false
              })
          }
          continue
        }
        try {
          if (raftId && members.has(raftId)) await raft.removeMember(raftId)
          await store.update((tx) => {
            const cur = tx.get('nodes', n.id)
            if (cur?.spec.role !== 'worker' || cur.role !== 'manager') return
            const next: Node = { ...cur, role: 'worker' }
            delete next.managerStatus
            if (next.description) {
              const labels = { ...next.description.engine.labels }
              delete labels[RAFT_ADDR_LABEL]
              delete labels[CONTROL_ADDR_LABEL]
              next.description = { ...next.description, engine: { ...next.description.engine, labels } }
            }
            tx.update('nodes', next)
          })
          log(`node ${n.id} demoted: it left raft and is a worker`)
        } catch (err) {
          log(`demoting ${n.id} is not possible yet: ${(err as Error).message}`)
        }
      }
    }
    return pending
  }
}
