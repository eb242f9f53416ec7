// Task status reports from every worker of a manager, committed together (swarm's dispatcher batches them
// too): a report waits only while the previous batch is in flight, then all waiting reports go into one
// store transaction, so one raft entry carries the reports of many nodes instead of one each.

/** One node's reports, and who waits for them to be committed. */
interface Pending<U> {
  readonly nodeId: string
  readonly updates: readonly U[]
  readonly resolve: () => void
  readonly reject: (err: unknown) => void
}

export interface StatusBatcherOptions<U> {
  /** Commits the reports of several nodes in one transaction (in the order given). */
  readonly commit: (batch: readonly { nodeId: string; updates: readonly U[] }[]) => Promise<void>
  /** Most updates in one transaction (a node's report is never split): a raft entry stays well under the
   * transport's 4 MiB frame. Default 2,000. */
  readonly maxUpdates?: number
  /**
   * Whether a failed commit may be one report's fault (then each report is tried alone). Default: always.
   * A failure that is no report's fault (the leadership changed under the commit, no quorum) is tried again
   * once with the whole batch together, and then fails every report of it.
   */
  readonly reportsFault?: (err: unknown) => boolean
}

export interface StatusBatcher<U> {
  /** Resolves once `updates` are committed (with other nodes' reports), rejects if that commit failed. */
  submit(nodeId: string, updates: readonly U[]): Promise<void>
  /** Transactions committed (or attempted) so far. */
  readonly commits: number
}

export function statusBatcher<U>(options: StatusBatcherOptions<U>): StatusBatcher<U> {
  const max = options.maxUpdates ?? 2000
  const reportsFault = options.reportsFault ?? (() => true)
  let queue: Pending<U>[] = []
  let running = false
  let commits = 0

  const take = (): Pending<U>[] => {
    let n = 0
    let i = 0
    while (i < queue.length && (i === 0 || n + queue[i]!.updates.length <= max))
      n += queue[i++]!.updates.length
    const batch = queue.slice(0, i)
    queue = queue.slice(i)
    return batch
  }

  /** Commits `ps` as one transaction; each is resolved or rejected with its outcome. */
  const settle = (ps: Pending<U>[]) => {
    commits++
    return options.commit(ps).then(
      () => {
        for (const p of ps) p.resolve()
      },
      (err: unknown) => {
        for (const p of ps) p.reject(err)
      },
    )
  }

  const drain = async () => {
    // One turn of the event loop first: reports that arrive together go together.
    await new Promise((r) => setImmediate(r))
    while (queue.length > 0) {
      const batch = take()
      commits++
      try {
        await options.commit(batch)
        for (const p of batch) p.resolve()
      } catch (err) {
        // Tried one by one, a batch of a few hundred nodes' reports that a leader change failed was a few
        // hundred sequential raft round trips after the election, with every report behind them waiting
        // (status calls timed out after 30 s in a leader kill at 5,000 nodes, issue #18): it goes again whole.
        if (!reportsFault(err)) await settle(batch)
        else if (batch.length === 1) batch[0]!.reject(err)
        // One node's bad report must not fail the others': each is tried alone.
        else for (const p of batch) await settle([p])
      }
    }
    running = false
  }

  return {
    submit(nodeId, updates) {
      return new Promise<void>((resolve, reject) => {
        queue.push({ nodeId, updates, resolve, reject })
        if (!running) {
          running = true
          void drain()
        }
      })
    },
    get commits() {
      return commits
    },
  }
}
