// The leader keeps every manager's node object in line with raft's own view of its member: reachable when
// raft hears from it, unreachable (and down) when it did not for two election timeouts, at two checks in a
// row. The dispatcher's heartbeats still decide readiness for everything else; but a manager raft knows is
// gone is down at once, so that the scheduler places nothing on it and the orchestrator moves its tasks,
// without the heartbeat grace period (issue 13).

import type { RaftNode } from '@swarmkit/raft'
import type { ClusterStore, Node, ReadTx } from '@swarmkit/store'

export interface ManagerHealthOptions {
  readonly store: ClusterStore
  readonly raft: RaftNode
  /** How often raft's view is compared with the store. Default 250 ms. */
  readonly periodMs?: number
  readonly log?: (line: string) => void
}

/** What `node` should become by raft's view (`up`), or undefined when it is right as it is. */
function wanted(node: Node, up: boolean): Node | undefined {
  const ms = node.managerStatus
  if (!ms) return undefined
  const reachability = up ? 'reachable' : 'unreachable'
  const goesDown = !up && node.status.state === 'ready'
  if (ms.reachability === reachability && !goesDown) return undefined
  const next: Node = { ...node, managerStatus: { ...ms, reachability, ...(up ? {} : { leader: false }) } }
  if (goesDown) next.status = { ...node.status, state: 'down', message: 'raft member unreachable' }
  return next
}

/** On the leader: follows raft's view of the managers into the store. */
export class ManagerHealth {
  readonly #store: ClusterStore
  readonly #raft: RaftNode
  readonly #periodMs: number
  readonly #log: (line: string) => void
  #timer: ReturnType<typeof setInterval> | undefined
  #running = false
  /**
   * Members raft did not hear at the last check. One is taken as gone only when it is still unheard at the
   * next: a leader whose own event loop stalled sees every member unheard for a moment, until the answers
   * to its next heartbeats arrive.
   */
  #unheard = new Set<string>()

  constructor(options: ManagerHealthOptions) {
    this.#store = options.store
    this.#raft = options.raft
    this.#periodMs = options.periodMs ?? 250
    this.#log = options.log ?? (() => {})
  }

  start(): void {
    if (this.#timer) return
    this.#timer = setInterval(() => void this.#check(), this.#periodMs)
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#unheard.clear()
  }

  /**
   * Raft's view of manager `nodeId`: false when this leader does not hear its raft member, true when it
   * does, undefined when there is no view (not leading, too early in a leadership, not a manager).
   */
  reachable(nodeId: string): boolean | undefined {
    const heard = this.#raft.reachableMembers()
    if (!heard) return undefined
    const raftId = this.#store.view((tx) => tx.get('nodes', nodeId)?.managerStatus?.raftId)
    if (!raftId || !this.#isMember(raftId)) return undefined
    return heard.includes(raftId)
  }

  #isMember(raftId: string): boolean {
    const { voters, learners } = this.#raft.members()
    return voters.includes(raftId) || learners.includes(raftId)
  }

  /** The manager nodes whose object disagrees with raft's view (`gone`: the members lost), as they should be. */
  #changes(tx: ReadTx, gone: ReadonlySet<string>): Node[] {
    return tx.find('nodes', { role: 'manager' }).flatMap((n) => {
      const raftId = n.managerStatus?.raftId
      if (!raftId || !this.#isMember(raftId)) return []
      const next = wanted(n, !gone.has(raftId))
      return next ? [next] : []
    })
  }

  async #check(): Promise<void> {
    if (this.#running || !this.#timer) return
    const heard = this.#raft.reachableMembers()
    if (!heard) {
      this.#unheard.clear()
      return
    }
    const { voters, learners } = this.#raft.members()
    const unheard = new Set([...voters, ...learners].filter((id) => !heard.includes(id)))
    const gone = new Set([...unheard].filter((id) => this.#unheard.has(id)))
    this.#unheard = unheard
    if (this.#store.view((tx) => this.#changes(tx, gone)).length === 0) return
    this.#running = true
    try {
      const changed = await this.#store.update((tx) => {
        const list = this.#changes(tx, gone)
        for (const n of list) tx.update('nodes', n)
        return list
      })
      for (const n of changed)
        this.#log(
          `manager ${n.id} is ${n.managerStatus!.reachability} by raft${n.status.state === 'down' ? ' (down)' : ''}`,
        )
    } catch (err) {
      this.#log(`manager reachability not recorded: ${(err as Error).message}`)
    } finally {
      this.#running = false
    }
  }
}
