// Incremental assignments (assignments-message.ts, assignment-stream.ts): a node's stream sends its complete
// set once, then only the tasks that changed or left it. These tests hold the agent to the store through
// a seeded run of changes with a reconnection in the middle (a lost or misapplied change leaves a task
// running that should not, or misses one), and hold each change to the size of what changed.
import { ClusterStore, type Node, type Task, type TaskState } from '@swarmkit/store'
import { messageCodec } from '@swarmkit/transport'
import { afterEach, describe, expect, it } from 'vitest'
import {
  Agent,
  type Assignment,
  type AssignmentsMessage,
  assignmentsMessages,
  checkAssignmentsMessage,
  Dispatcher,
  type DispatcherApi,
  type SimulatedExecutor,
  simulatedExecutor,
} from '../src/index.js'
import { waitFor } from './helpers.js'

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function node(id: string): Omit<Node, 'meta'> {
  return {
    id,
    spec: { labels: {}, role: 'worker', availability: 'active' },
    role: 'worker',
    status: { state: 'ready', addr: '127.0.0.1' },
  }
}

function task(id: string, nodeId: string, slot: number, state: TaskState = 'assigned'): Omit<Task, 'meta'> {
  return {
    id,
    spec: { containerSpec: { image: 'busybox', env: [`SLOT=${slot}`] } },
    specVersion: { index: 1 },
    serviceId: 'svc',
    slot,
    nodeId,
    serviceAnnotations: { name: 'web', labels: {} },
    status: { timestamp: 0, state, message: state },
    desiredState: 'running',
    networks: [],
  }
}

/** A state a task shut down (or finished) is in. */
const isDown = (s: TaskState) => ['shutdown', 'complete', 'failed', 'rejected'].includes(s)

const INFO = {
  platform: { os: 'linux', architecture: 'x86_64' },
  resources: { nanoCPUs: 1e9, memoryBytes: 1e9 },
  engineVersion: 'x',
}

/** A small deterministic generator (mulberry32), so a failing run replays from its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

/** An agent on `nodeId` against the dispatcher in process, whose stream a test can break. */
async function startAgent(dispatcher: Dispatcher, nodeId: string) {
  let breakStream: (() => void) | undefined
  let streams = 0
  const api: DispatcherApi = {
    register: (id, info, addr) => dispatcher.register(id, info, addr),
    heartbeat: (id) => dispatcher.heartbeat(id),
    updateStatus: (id, u) => dispatcher.updateStatus(id, u),
    mesh: (id, signal) => dispatcher.mesh(id, signal),
    async *assignments(id, signal) {
      streams++
      const mine = new AbortController()
      const onAbort = () => mine.abort()
      signal.addEventListener('abort', onAbort, { once: true })
      let broken = false
      breakStream = () => {
        broken = true
        mine.abort()
      }
      try {
        for await (const m of dispatcher.assignments(id, mine.signal)) yield m
        if (broken) throw new Error('connection lost (test)')
      } finally {
        signal.removeEventListener('abort', onAbort)
      }
    },
  }
  const executor: SimulatedExecutor = simulatedExecutor({
    hostname: nodeId,
    addr: '127.0.0.1',
    stepMs: 1,
    serveTasks: false,
  })
  const agent = new Agent({
    nodeId,
    dispatcher: api,
    info: { ...INFO, hostname: nodeId },
    addr: '127.0.0.1',
    executor,
  })
  cleanups.push(async () => {
    await agent.stop()
    await executor.close()
  })
  await agent.start()
  return {
    agent,
    executor,
    breakStream: () => breakStream?.(),
    get streams() {
      return streams
    },
  }
}

describe('incremental assignments, end to end', () => {
  it('keeps each worker to exactly its tasks in the store through a seeded run of changes and a reconnection', async () => {
    const seed = Number(process.env['SWARMKIT_SEED'] ?? Date.now() % 1_000_000)
    const rnd = random(seed)
    const store = new ClusterStore()
    const dispatcher = new Dispatcher({ store })
    cleanups.push(() => dispatcher.close())
    const nodes = ['n0', 'n1', 'n2']
    let slot = 0
    await store.update((tx) => {
      for (const n of nodes) {
        tx.create('nodes', node(n))
        for (let k = 0; k < 5; k++) tx.create('tasks', task(`t${++slot}`, n, slot))
      }
    })
    const agents = await Promise.all(nodes.map((n) => startAgent(dispatcher, n)))
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
    const step = async () => {
      await store.update((tx) => {
        const tasks = tx.find('tasks')
        const kind = rnd()
        if (kind < 0.3 || tasks.length === 0) tx.create('tasks', task(`t${++slot}`, pick(nodes), slot))
        else if (kind < 0.5) tx.delete('tasks', pick(tasks).id)
        else if (kind < 0.7) {
          const t = pick(tasks)
          tx.update('tasks', { ...t, nodeId: pick(nodes.filter((n) => n !== t.nodeId)) })
        } else {
          // Desired states only go forward (a task shut down is not started again).
          const t = pick(tasks.filter((x) => x.desiredState === 'running'))
          if (t) tx.update('tasks', { ...t, desiredState: 'shutdown' })
        }
      })
      // Sometimes let the streams send before the next change, sometimes let changes pile up.
      if (rnd() < 0.5) await new Promise((r) => setImmediate(r))
      if (rnd() < 0.2) await new Promise((r) => setTimeout(r, 5))
    }
    for (let i = 0; i < 150; i++) await step()
    // n0 loses its stream; changes go on meanwhile, and its next stream starts from a complete set.
    const before = agents[0]!.streams
    agents[0]!.breakStream()
    for (let i = 0; i < 100; i++) await step()
    await waitFor(() => agents[0]!.streams > before, 'n0 subscribed again', 10_000)
    for (let i = 0; i < 50; i++) await step()

    for (const [i, n] of nodes.entries()) {
      const { agent, executor } = agents[i]!
      /** What the store wants on the node, and what the worker holds and has done. */
      const wanted = () =>
        store.view((tx) =>
          tx
            .find('tasks', { nodeId: n })
            .map((t) => `${t.id}:${t.desiredState === 'running' ? 'running' : 'down'}`)
            .sort(),
        )
      const done = () =>
        agent
          .tasks()
          .map((t) => `${t.taskId}:${t.state === 'running' ? 'running' : isDown(t.state) ? 'down' : t.state}`)
          .sort()
      const same = (x: string[], y: string[]) => JSON.stringify(x) === JSON.stringify(y)
      // The executor holds nothing else (a removed task is gone), and every task that should run (one shut
      // down before it started never reached the executor).
      const executorRight = () => {
        const held = new Set(executor.taskIds())
        const ids = new Set(wanted().map((x) => x.split(':')[0]!))
        return (
          [...held].every((id) => ids.has(id)) &&
          wanted().every((x) => !x.endsWith(':running') || held.has(x.split(':')[0]!))
        )
      }
      await waitFor(
        () => same(done(), wanted()) && executorRight(),
        `${n} runs exactly its tasks (seed ${seed})`,
        30_000,
        () =>
          `seed ${seed}: store ${JSON.stringify(wanted())}; agent ${JSON.stringify(done())}; executor ${JSON.stringify(executor.taskIds().sort())}`,
      )
    }
  }, 120_000)
})

describe('incremental assignments, on the wire', () => {
  /** A node with `count` tasks and a reader of its stream. */
  async function oneNode(count: number) {
    const store = new ClusterStore()
    const dispatcher = new Dispatcher({ store })
    cleanups.push(() => dispatcher.close())
    await store.update((tx) => {
      tx.create('nodes', node('n0'))
      for (let k = 1; k <= count; k++) tx.create('tasks', task(`t${k}`, 'n0', k))
    })
    const messages: AssignmentsMessage[] = []
    const stop = new AbortController()
    cleanups.push(() => stop.abort())
    void (async () => {
      for await (const m of dispatcher.assignments('n0', stop.signal)) messages.push(m)
    })()
    await waitFor(() => messages.length > 0 && !messages.at(-1)!.more, 'the complete set', 10_000)
    return { store, dispatcher, messages }
  }

  it('sends one task per change of one task, not the node’s whole set', async () => {
    const h = await oneNode(1000)
    const codec = messageCodec()
    const bytes = (ms: readonly AssignmentsMessage[]) =>
      ms.reduce((n, m) => n + codec.encode(m).byteLength, 0)
    const complete = h.messages.slice()
    expect(complete.reduce((n, m) => n + m.update.length, 0)).toBe(1000)
    const setBytes = bytes(complete)
    for (let k = 1; k <= 10; k++) {
      const seen = h.messages.length
      await h.store.update((tx) => {
        const t = tx.get('tasks', `t${k}`)!
        tx.update('tasks', { ...t, desiredState: 'shutdown' })
      })
      await waitFor(() => h.messages.length === seen + 1, `the change of t${k}`, 5000)
      const m = h.messages.at(-1)!
      expect(m).toMatchObject({ type: 'incremental', remove: [] })
      expect(m.update.map((a) => a.taskId)).toEqual([`t${k}`])
      // One task of a thousand: well under a hundredth of the set's bytes on the wire.
      expect(bytes([m])).toBeLessThan(setBytes / 100)
    }
    // The node's own reports of its tasks' progress bring it nothing.
    const seen = h.messages.length
    await h.dispatcher.updateStatus('n0', [{ taskId: 't500', state: 'running', message: 'started' }])
    await h.store.update((tx) => tx.delete('tasks', 't999'))
    await waitFor(() => h.messages.length === seen + 1, 'the removal', 5000)
    expect(h.messages.at(-1)).toMatchObject({ type: 'incremental', update: [], remove: ['t999'] })
  })
})

describe('assignments messages', () => {
  const a = (id: string): Assignment => ({
    taskId: id,
    serviceId: 's',
    serviceName: 'web',
    slot: 1,
    nodeId: 'n0',
    image: 'busybox',
    desiredState: 'running',
    state: 'assigned',
    hostPorts: [],
    ports: [],
    spec: { containerSpec: { image: 'busybox' } },
    serviceLabels: {},
    networks: [],
    genericResources: [],
    secrets: [],
    configs: [],
  })

  it('cuts a set into parts of at most the limit, marking every part of a complete set but the last', () => {
    const list = Array.from({ length: 7 }, (_, i) => a(`t${i}`))
    const parts = assignmentsMessages('complete', list, [], undefined, 3)
    expect(parts.map((m) => [m.update.length, m.more === true])).toEqual([
      [3, true],
      [3, true],
      [1, false],
    ])
    const changes = assignmentsMessages('incremental', list.slice(0, 2), ['x', 'y', 'z'], undefined, 3)
    expect(changes.map((m) => [m.update.length, m.remove.length, m.more])).toEqual([
      [2, 1, undefined],
      [0, 2, undefined],
    ])
    expect(assignmentsMessages('incremental', [], [], undefined)).toEqual([])
    expect(assignmentsMessages('complete', [], [], undefined)).toEqual([
      { kind: 'assignments', type: 'complete', update: [], remove: [] },
    ])
  })

  it('refuses what is not a message, with a TypeError', () => {
    const ok = { kind: 'assignments', type: 'incremental', update: [a('t1')], remove: ['t2'] }
    expect(checkAssignmentsMessage(ok)).toBe(ok)
    for (const bad of [
      null,
      [a('t1')],
      { ...ok, kind: 'network-view' },
      { ...ok, type: 'full' },
      { ...ok, update: 'x' },
      { ...ok, remove: [1] },
      { ...ok, update: [{ taskId: 't1' }] },
      { ...ok, more: 'yes' },
      { ...ok, view: { kind: 'other' } },
      { ...ok, remove: Array.from({ length: 501 }, (_, i) => `t${i}`) },
    ])
      expect(() => checkAssignmentsMessage(bad)).toThrow(TypeError)
  })
})
