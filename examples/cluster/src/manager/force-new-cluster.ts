// `docker swarm init --force-new-cluster` on a manager: restart from its own raft log as the only member,
// keeping all cluster state. The log is folded into a snapshot first; the other managers are forgotten after.

import { EntryType, type FileLogStorage } from '@swarmkit/raft'
import { ClusterStore, type Node } from '@swarmkit/store'
import { RAFT_ADDR_LABEL } from '../labels.js'

/**
 * Before `forceNewCluster`: folds the committed log into one snapshot whose configuration is this manager
 * alone (the other managers recorded as removed). Raft's `forceNewCluster` appends the one-member
 * configuration after the committed entries, but replaying membership entries still in the log would bring
 * the lost managers back as voters, and then the new configuration could never commit.
 */
export async function snapshotCommitted(storage: FileLogStorage, nodeId: string): Promise<void> {
  const st = await storage.load()
  const base = st.snapshot?.meta.index ?? 0
  const committed = st.entries.filter((e) => e.index > base && e.index <= st.hardState.commit)
  if (!committed.some((e) => e.type === EntryType.Config)) return
  const store = new ClusterStore()
  if (st.snapshot) store.restore(st.snapshot.data)
  for (const e of committed)
    if (e.type === EntryType.Normal && e.data.length > 0) store.apply(e.data, e.index)
  const others = store.view((tx) =>
    tx
      .find('nodes')
      .filter((n) => n.managerStatus && n.id !== nodeId)
      .map((n) => n.managerStatus!.raftId),
  )
  const last = committed.at(-1)!
  const removed = new Set([...(st.snapshot?.meta.conf.removed ?? []), ...others])
  removed.delete(nodeId)
  await storage.save({
    snapshot: {
      meta: {
        index: last.index,
        term: last.term,
        conf: { voters: [nodeId], learners: [], removed: [...removed] },
      },
      data: store.snapshot(),
    },
  })
  store.close?.()
}

/**
 * After `forceNewCluster`: the other managers are no raft members any more (and their IDs never return).
 * They stay in the node list, unreachable, until demoted and removed; without their raft addresses the
 * role reconciler does not try to add them back.
 */
export async function forgetOtherManagers(store: ClusterStore, nodeId: string): Promise<void> {
  await store.update((tx) => {
    for (const n of tx.find('nodes', { role: 'manager' })) {
      if (n.id === nodeId || !n.managerStatus) continue
      const next: Node = {
        ...n,
        managerStatus: { ...n.managerStatus, leader: false, reachability: 'unreachable' },
      }
      if (n.description) {
        const labels = { ...n.description.engine.labels }
        delete labels[RAFT_ADDR_LABEL]
        next.description = { ...n.description, engine: { ...n.description.engine, labels } }
      }
      tx.update('nodes', next)
    }
  })
}
