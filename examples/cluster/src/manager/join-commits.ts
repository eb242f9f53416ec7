// The node objects of joins, committed together: a join waits only while the previous commit is in flight,
// then every join waiting goes into one store transaction. Store updates are serialized (one raft proposal
// at a time per manager), so a join storm of one transaction per node queued each join behind all the
// others: 5-7 s per join at 5,000 nodes. A batch that fails is tried again node by node (the status
// batcher's rule), so one node's failure never refuses another's join.

import type { ClusterStore, Node } from '@swarmkit/store'
import { statusBatcher } from '../status-batcher.js'

export type NewNode = Omit<Node, 'meta'>

export interface JoinCommits {
  /** Resolves once `node` is committed (with the other joins' nodes), rejects with its commit's error. */
  create(node: NewNode): Promise<void>
  /** Transactions committed (or attempted) so far. */
  readonly commits: number
}

/** Most node objects in one transaction: a raft entry stays far below the transport's 4 MiB frame. */
const MAX_NODES_PER_COMMIT = 250

export function joinCommits(store: ClusterStore): JoinCommits {
  const batcher = statusBatcher<NewNode>({
    maxUpdates: MAX_NODES_PER_COMMIT,
    commit: (batch) =>
      store.update((tx) => {
        for (const { updates } of batch) for (const node of updates) tx.create('nodes', node)
      }),
  })
  return {
    create: (node) => batcher.submit(node.id, [node]),
    get commits() {
      return batcher.commits
    },
  }
}
