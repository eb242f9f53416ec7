import { ClusterStore } from '@swarmkit/store'
import { schedulerStoreCompliance } from '../src/testing/index.js'

schedulerStoreCompliance('local ClusterStore', () => {
  const store = new ClusterStore()
  return { store, close: () => store.close() }
})

schedulerStoreCompliance('replicated ClusterStore (a proposer that applies in log order)', () => {
  let index = 0
  const store: ClusterStore = new ClusterStore({
    proposer: async (command) => {
      // Commit later, as raft does, so that update() waits for its own command to come back.
      await new Promise((resolve) => setImmediate(resolve))
      return store.apply(command, ++index)
    },
  })
  return { store, close: () => store.close() }
})
