import { stateMachineCompliance } from '@swarmkit/raft/testing'
import { ClusterStore } from '../src/index.js'
import { network, node, secret, service } from './fixtures.js'

/** The commands a replicated store proposes, recorded from a store that applies its own proposals. */
async function recordCommands(): Promise<Uint8Array[]> {
  const commands: Uint8Array[] = []
  const store: ClusterStore = new ClusterStore({
    proposer: async (command) => {
      commands.push(command)
      return store.apply(command, commands.length)
    },
    clock: () => 1_700_000_000_000,
    random: (n) => new Uint8Array(n).fill(commands.length + 1),
  })
  await store.update((tx) => tx.create('nodes', node('node1')))
  await store.update((tx) => tx.create('networks', network('net1', 'appnet')))
  await store.update((tx) => tx.create('services', service('svc1', 'web', { networks: ['net1'] })))
  await store.update((tx) => tx.create('secrets', secret('sec1', 'db')))
  await store.update((tx) => tx.delete('secrets', 'sec1'))
  // One that every member refuses the same way (a duplicate name).
  await store.update((tx) => tx.create('services', service('svc2', 'web'))).catch(() => {})
  return commands
}

stateMachineCompliance('ClusterStore', {
  create: () => new ClusterStore(),
  commands: recordCommands,
})
