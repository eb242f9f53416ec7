import { MemoryNetwork } from '@swarmkit/transport'
import { MemoryLogStorage, RaftNode, type StateMachine } from '../src/index.js'
import { proposerCompliance, stateMachineCompliance } from '../src/testing/index.js'

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)

/** The key-value machine the raft tests use: `k=v` sets k, and returns v. */
function kv(): StateMachine {
  const data = new Map<string, string>()
  return {
    apply(cmd: Uint8Array) {
      const [k, v] = dec(cmd).split('=')
      data.set(k!, v!)
      return v
    },
    snapshot: () => enc(JSON.stringify([...data].sort())),
    restore(s: Uint8Array) {
      data.clear()
      for (const [k, v] of JSON.parse(dec(s))) data.set(k, v)
    },
  }
}

stateMachineCompliance('key-value test machine', {
  create: kv,
  commands: () => ['a=1', 'b=2', 'a=3', 'c=4', 'd=5'].map(enc),
})

proposerCompliance('single-member RaftNode', async (stateMachine) => {
  const net = new MemoryNetwork({ seed: 7 })
  const node = new RaftNode({
    id: 'n1',
    peers: ['n1'],
    transport: net.transport('n1'),
    storage: new MemoryLogStorage(),
    stateMachine,
    electionTimeoutMs: [20, 40],
    heartbeatIntervalMs: 10,
  })
  await node.start()
  // Proposals before the first election may be refused (LOST_LEADERSHIP): the contract starts at a leader.
  const deadline = Date.now() + 20_000
  while (node.role !== 'leader') {
    if (Date.now() > deadline) throw new Error('no leader elected')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return {
    propose: (command, options) => node.propose(command, options).then((r) => r.result),
    close: () => node.stop(),
  }
})
