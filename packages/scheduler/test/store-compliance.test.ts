import { MemoryStore } from '@swarmkit/store'
import { schedulerStoreCompliance } from '../src/testing/index.js'

schedulerStoreCompliance('local MemoryStore', () => {
  const store = new MemoryStore()
  return { store, close: () => store.close() }
})

schedulerStoreCompliance('replicated MemoryStore (a proposer that applies in log order)', () => {
  let index = 0
  const store: MemoryStore = new MemoryStore({
    proposer: async (command) => {
      // Commit later, as raft does, so that update() waits for its own command to come back.
      await new Promise((resolve) => setImmediate(resolve))
      return store.apply(command, ++index)
    },
  })
  return { store, close: () => store.close() }
})
