// The dispatcher's paths at scale: status reports of many nodes committed together, assignment streams
// woken only by changes that concern their node (not by the node's own status reports), and the agent
// keeping each report under the dispatcher's limit of 1,000 updates.
import { ClusterStore, type Node, type Task, type TaskState } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import {
  Agent,
  type Assignment,
  type AssignmentsMessage,
  assignmentsMessages,
  Dispatcher,
  type DispatcherApi,
  ENDPOINT_LABEL,
  simulatedExecutor,
  type TaskStatusUpdate,
} from '../src/index.js'
import { statusBatcher } from '../src/status-batcher.js'
import { complete } from './agent-fakes.js'
import { waitFor } from './helpers.js'

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
    spec: { containerSpec: { image: 'busybox' } },
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

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const c of cleanups.splice(0)) c()
})

function setup(nodes: number, tasksPerNode: number) {
  const store = new ClusterStore()
  const dispatcher = new Dispatcher({ store })
  cleanups.push(() => dispatcher.close())
  return {
    store,
    dispatcher,
    /** Transactions committed so far (each one is a raft entry on a manager). */
    commits: () => store.version,
    async populate() {
      await store.update((tx) => {
        for (let n = 0; n < nodes; n++) {
          tx.create('nodes', node(`n${n}`))
          for (let k = 0; k < tasksPerNode; k++)
            tx.create('tasks', task(`t${n}-${k}`, `n${n}`, n * tasksPerNode + k + 1))
        }
      })
    },
  }
}

const report = (taskId: string, state: TaskState): TaskStatusUpdate => ({ taskId, state, message: state })

describe('Dispatcher status reports', () => {
  it('commits the reports of many nodes that arrive together in one transaction', async () => {
    const h = setup(50, 2)
    await h.populate()
    const before = h.commits()
    await Promise.all(
      Array.from({ length: 50 }, (_, n) =>
        h.dispatcher.updateStatus(`n${n}`, [report(`t${n}-0`, 'running'), report(`t${n}-1`, 'preparing')]),
      ),
    )
    expect(h.commits() - before).toBe(1)
    const states = h.store.view((tx) => tx.find('tasks').map((t) => `${t.id}=${t.status.state}`))
    expect(states.filter((s) => s.endsWith('=running'))).toHaveLength(50)
    expect(states.filter((s) => s.endsWith('=preparing'))).toHaveLength(50)
  })

  it('keeps applying only a node its own tasks, forward, within a batch', async () => {
    const h = setup(2, 1)
    await h.populate()
    await Promise.all([
      // n1 reports a task of n0: ignored; n0 goes forward, then (a late, older report) backward: kept forward.
      h.dispatcher.updateStatus('n1', [report('t0-0', 'failed')]),
      h.dispatcher.updateStatus('n0', [report('t0-0', 'running')]),
      h.dispatcher.updateStatus('n0', [report('t0-0', 'starting')]),
      h.dispatcher.updateStatus('n1', [report('t1-0', 'running')]),
    ])
    const state = (id: string) => h.store.view((tx) => tx.get('tasks', id)?.status.state)
    expect(state('t0-0')).toBe('running')
    expect(state('t1-0')).toBe('running')
  })

  it('refuses a report with a malformed update by name, commits nothing of it, and goes on with the others', async () => {
    const h = setup(2, 1)
    await h.populate()
    const bad = [null, 7, { state: 'running', message: '' }, { taskId: 't0-0', state: 3, message: '' }]
    for (const u of bad) {
      const sent = h.dispatcher.updateStatus('n0', [report('t0-0', 'running'), u as never])
      await expect(sent).rejects.toThrow(TypeError)
      await expect(sent).rejects.toThrow(/^updates\[1\]: expected \{ taskId, state \}/)
    }
    // Sent together with another node's report: that one commits.
    const [first, second] = await Promise.allSettled([
      h.dispatcher.updateStatus('n0', [null as never]),
      h.dispatcher.updateStatus('n1', [report('t1-0', 'running')]),
    ])
    expect(first.status).toBe('rejected')
    expect(second.status).toBe('fulfilled')
    const state = (id: string) => h.store.view((tx) => tx.get('tasks', id)?.status.state)
    expect(state('t0-0')).toBe('assigned')
    expect(state('t1-0')).toBe('running')
  })

  it('ends a task where its reports one at a time would, when one report carries several of its states', async () => {
    const h = setup(1, 8)
    await h.populate()
    const endpoint = { address: '127.0.0.1', port: 8080 }
    const lists: TaskStatusUpdate[][] = [
      ['accepted', 'preparing', 'starting', 'running'].map((s) => report('', s as TaskState)),
      [report('', 'accepted'), report('', 'preparing'), { ...report('', 'running'), endpoint }],
      [{ ...report('', 'running'), endpoint }, report('', 'failed')],
      [report('', 'starting'), report('', 'accepted')],
    ]
    // Tasks t0-0..3 get each list in one report, t0-4..7 the same updates one report each.
    for (const [i, list] of lists.entries()) {
      await h.dispatcher.updateStatus(
        'n0',
        list.map((u) => ({ ...u, taskId: `t0-${i}` })),
      )
      for (const u of list) await h.dispatcher.updateStatus('n0', [{ ...u, taskId: `t0-${i + 4}` }])
    }
    const seen = (id: string) =>
      h.store.view((tx) => {
        const t = tx.get('tasks', id)!
        const { timestamp: _, ...status } = t.status
        return { status, labels: t.labels }
      })
    for (let i = 0; i < 4; i++) expect(seen(`t0-${i}`)).toEqual(seen(`t0-${i + 4}`))
    expect(seen('t0-1').labels?.[ENDPOINT_LABEL]).toBe('127.0.0.1:8080')
    expect(seen('t0-2').status.state).toBe('failed')
    expect(seen('t0-3').status.state).toBe('starting')
    // A state that is none, for a task that is not the node's, is passed over as it was before.
    await h.dispatcher.updateStatus('n0', [
      { taskId: 'nope', state: 'bogus' as TaskState, message: '' },
      report('t0-0', 'complete'),
    ])
    expect(seen('t0-0').status.state).toBe('complete')
  })

  it('tries a batch that a leader change failed again as a whole, not one node at a time', async () => {
    // A store replicated through a proposer whose first proposal fails as raft does when the leader changed
    // under it: the outcome is open, and the store's fence (the second proposal) settles it as not committed.
    let index = 0
    let failNext = false
    let proposals = 0
    const store: ClusterStore = new ClusterStore({
      proposer: async (cmd) => {
        await new Promise((r) => setImmediate(r))
        proposals++
        if (failNext) {
          failNext = false
          throw Object.assign(new Error('raft: leadership changed'), { name: 'RaftError', code: 'STOPPED' })
        }
        store.apply(cmd, ++index)
        return { index }
      },
    })
    const dispatcher = new Dispatcher({ store })
    cleanups.push(() => dispatcher.close())
    await store.update((tx) => {
      for (let n = 0; n < 3; n++) {
        tx.create('nodes', node(`n${n}`))
        tx.create('tasks', task(`t${n}`, `n${n}`, n + 1))
      }
    })
    proposals = 0
    failNext = true
    await Promise.all([0, 1, 2].map((n) => dispatcher.updateStatus(`n${n}`, [report(`t${n}`, 'running')])))
    // The failed proposal, its fence, and the three reports again in one transaction (not three).
    expect(proposals).toBe(3)
    expect(store.view((tx) => tx.find('tasks').map((t) => t.status.state))).toEqual([
      'running',
      'running',
      'running',
    ])
  })

  it('still refuses a report of more than 1,000 updates', async () => {
    const h = setup(1, 1)
    await h.populate()
    const many = Array.from({ length: 1001 }, () => report('t0-0', 'running'))
    await expect(h.dispatcher.updateStatus('n0', many)).rejects.toThrow(TypeError)
  })
})

describe('Dispatcher registrations and heartbeats', () => {
  const info = (hostname: string) => ({
    hostname,
    platform: { os: 'linux', architecture: 'x86_64' },
    resources: { nanoCPUs: 1e9, memoryBytes: 1e9 },
    engineVersion: 'x',
  })

  it('commits the registrations that arrive together in one transaction; an unknown node fails alone', async () => {
    const h = setup(50, 0)
    await h.populate()
    const before = h.commits()
    const results = await Promise.allSettled([
      ...Array.from({ length: 50 }, (_, n) =>
        h.dispatcher.register(`n${n}`, info(`host${n}`), `10.0.0.${n}`),
      ),
      h.dispatcher.register('gone', info('gone'), '10.0.1.1'),
    ])
    expect(results.slice(0, 50).every((r) => r.status === 'fulfilled')).toBe(true)
    expect(results[50]).toMatchObject({
      status: 'rejected',
      reason: { message: expect.stringContaining('not found') },
    })
    expect(h.commits() - before).toBe(1)
    const hosts = h.store.view((tx) => tx.find('nodes').map((n) => n.description?.hostname))
    expect(hosts.filter((x) => x?.startsWith('host'))).toHaveLength(50)
  })

  it('writes nothing for a node that registers again as it was (a worker turned to another manager)', async () => {
    const h = setup(3, 0)
    await h.populate()
    await Promise.all(
      [0, 1, 2].map((n) => h.dispatcher.register(`n${n}`, info(`host${n}`), `127.0.0.${n + 1}`)),
    )
    const before = h.commits()
    await Promise.all(
      [0, 1, 2].map((n) => h.dispatcher.register(`n${n}`, info(`host${n}`), `127.0.0.${n + 1}`)),
    )
    expect(h.commits()).toBe(before)
    // What differs is written: another address, another description, a node marked down.
    await h.dispatcher.register('n0', info('host0'), '127.0.0.9')
    await h.dispatcher.register('n1', { ...info('host1'), engineVersion: 'y' }, '127.0.0.2')
    await h.store.update((tx) => {
      const n = tx.get('nodes', 'n2')!
      tx.update('nodes', { ...n, status: { ...n.status, state: 'down' } })
    })
    await h.dispatcher.register('n2', info('host2'), '127.0.0.3')
    const nodes = h.store.view((tx) => tx.find('nodes'))
    expect(nodes.find((n) => n.id === 'n0')?.status.addr).toBe('127.0.0.9')
    expect(nodes.find((n) => n.id === 'n1')?.description?.engine.engineVersion).toBe('y')
    expect(nodes.find((n) => n.id === 'n2')?.status.state).toBe('ready')
  })

  it('makes the nodes whose heartbeats come back after they were marked down ready in one transaction', async () => {
    const h = setup(50, 0)
    await h.populate()
    await h.store.update((tx) => {
      for (const n of tx.find('nodes')) tx.update('nodes', { ...n, status: { ...n.status, state: 'down' } })
    })
    const before = h.commits()
    await Promise.all(Array.from({ length: 50 }, (_, n) => h.dispatcher.heartbeat(`n${n}`)))
    expect(h.commits() - before).toBe(1)
    expect(h.store.view((tx) => tx.find('nodes').every((n) => n.status.state === 'ready'))).toBe(true)
  })
})

describe('statusBatcher', () => {
  it('fails only the report whose commit fails, not the others batched with it', async () => {
    const committed: string[] = []
    const b = statusBatcher<string>({
      async commit(batch) {
        if (batch.some((p) => p.nodeId === 'bad')) throw new Error('bad report')
        for (const p of batch) committed.push(...p.updates)
      },
    })
    const results = await Promise.allSettled([
      b.submit('a', ['a1']),
      b.submit('bad', ['x']),
      b.submit('c', ['c1']),
    ])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(committed.sort()).toEqual(['a1', 'c1'])
  })

  it("tries a batch again as a whole when the failure is no report's fault, then fails all of it", async () => {
    let calls = 0
    const b = statusBatcher<string>({
      reportsFault: (err) => (err as Error).message !== 'no leader',
      async commit() {
        calls++
        throw new Error('no leader')
      },
    })
    const results = await Promise.allSettled([
      b.submit('a', ['a1']),
      b.submit('b', ['b1']),
      b.submit('c', ['c1']),
    ])
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected'])
    expect(calls).toBe(2)
    expect(b.commits).toBe(2)
  })

  it('keeps a transaction under maxUpdates without splitting a node', async () => {
    const sizes: number[] = []
    const b = statusBatcher<number>({
      maxUpdates: 5,
      async commit(batch) {
        sizes.push(batch.reduce((n, p) => n + p.updates.length, 0))
      },
    })
    await Promise.all([
      b.submit('a', [1, 2, 3]),
      b.submit('b', [1, 2]),
      b.submit('c', [1, 2, 3]),
      b.submit('d', [1, 2, 3, 4, 5, 6, 7]),
    ])
    expect(sizes).toEqual([5, 3, 7])
  })
})

describe('Dispatcher assignment streams', () => {
  /** Reads a node's stream until aborted: the messages, and the set they add up to. */
  function follow(d: Dispatcher, nodeId: string) {
    const messages: AssignmentsMessage[] = []
    const held = new Map<string, Assignment>()
    const stop = new AbortController()
    cleanups.push(() => stop.abort())
    void (async () => {
      for await (const m of d.assignments(nodeId, stop.signal)) {
        if (m.type === 'complete' && messages.at(-1)?.more !== true) held.clear()
        for (const a of m.update) held.set(a.taskId, a)
        for (const id of m.remove) held.delete(id)
        messages.push(m)
      }
    })()
    return { messages, held }
  }

  it("sends nothing for the node's own status reports, and one change for a new desired state", async () => {
    const h = setup(2, 1)
    await h.populate()
    const { messages } = follow(h.dispatcher, 'n0')
    await waitFor(() => messages.length === 1, 'messages.length === 1', 5000)
    expect(messages[0]).toMatchObject({ type: 'complete', remove: [] })
    expect(messages[0]!.update.map((a) => a.taskId)).toEqual(['t0-0'])
    for (const s of ['accepted', 'preparing', 'starting', 'running'] as const)
      await h.dispatcher.updateStatus('n0', [report('t0-0', s)])
    // Another node's changes do not concern n0 either.
    await h.dispatcher.updateStatus('n1', [report('t1-0', 'running')])
    await h.store.update((tx) => {
      const t = tx.get('tasks', 't0-0')!
      tx.update('tasks', { ...t, desiredState: 'shutdown' })
    })
    await waitFor(() => messages.length >= 2, 'messages.length >= 2', 5000)
    await new Promise((r) => setTimeout(r, 50))
    expect(messages).toHaveLength(2)
    expect(messages[1]).toMatchObject({ type: 'incremental', remove: [] })
    expect(messages[1]!.update).toHaveLength(1)
    expect(messages[1]!.update[0]).toMatchObject({
      taskId: 't0-0',
      desiredState: 'shutdown',
      state: 'running',
    })
  })

  it('tells a node of new tasks, of removed ones, and the node a task left', async () => {
    const h = setup(2, 1)
    await h.populate()
    const n0 = follow(h.dispatcher, 'n0')
    const n1 = follow(h.dispatcher, 'n1')
    await waitFor(() => n0.messages.length === 1 && n1.messages.length === 1, 'both complete sets', 5000)
    await h.store.update((tx) => tx.create('tasks', task('new', 'n0', 9)))
    await waitFor(() => n0.held.has('new'), "n0 holds 'new'", 5000)
    await h.store.update((tx) => {
      const t = tx.get('tasks', 't0-0')!
      tx.update('tasks', { ...t, nodeId: 'n1' })
    })
    await waitFor(() => !n0.held.has('t0-0'), "n0 no longer holds 't0-0'", 5000)
    await waitFor(() => n1.held.has('t0-0'), "n1 holds 't0-0'", 5000)
    await h.store.update((tx) => tx.delete('tasks', 'new'))
    await waitFor(() => !n0.held.has('new'), "n0 no longer holds 'new'", 5000)
    expect([...n0.held.keys()]).toEqual([])
    expect([...n1.held.keys()].sort()).toEqual(['t0-0', 't1-0'])
    // Only changes after the complete set: each message carries the one task that changed.
    for (const m of [...n0.messages.slice(1), ...n1.messages.slice(1)]) {
      expect(m.type).toBe('incremental')
      expect(m.update.length + m.remove.length).toBe(1)
    }
  })

  it("sends a task again with its service's new published ports (the kept assignment is rebuilt)", async () => {
    const h = setup(1, 1)
    await h.populate()
    const spec = { name: 'web', labels: {}, taskTemplate: { containerSpec: { image: 'busybox' } } }
    await h.store.update((tx) =>
      tx.create('services', {
        id: 'svc',
        spec: { ...spec, mode: { replicated: { replicas: 1 } } },
        specVersion: { index: 1 },
      }),
    )
    const { messages } = follow(h.dispatcher, 'n0')
    await waitFor(() => messages.length === 1, 'first message', 5000)
    expect(messages[0]!.update[0]!.ports).toEqual([])
    const port = {
      protocol: 'tcp' as const,
      targetPort: 80,
      publishedPort: 8080,
      publishMode: 'ingress' as const,
    }
    await h.store.update((tx) => {
      const svc = tx.get('services', 'svc')!
      tx.update('services', { ...svc, endpoint: { spec: { mode: 'vip' }, ports: [port], virtualIPs: [] } })
      const t = tx.get('tasks', 't0-0')!
      tx.update('tasks', { ...t, desiredState: 'shutdown' })
    })
    await waitFor(() => messages.length === 2, 'second message', 5000)
    expect(messages[1]!.update[0]).toMatchObject({ desiredState: 'shutdown', ports: [port] })
  })

  it('serves a commit of more tasks than a watch queue holds, in messages of at most 500', async () => {
    const h = setup(1, 0)
    await h.populate()
    const { messages, held } = follow(h.dispatcher, 'n0')
    await waitFor(() => messages.length === 1, 'messages.length === 1', 5000)
    await h.store.update((tx) => {
      for (let i = 0; i < 12_000; i++) tx.create('tasks', task(`big${i}`, 'n0', i + 1))
    })
    await waitFor(() => held.size === 12_000, 'held.size === 12_000', 20_000)
    expect(Math.max(...messages.map((m) => m.update.length + m.remove.length))).toBeLessThanOrEqual(500)
    // A new stream (a reconnecting agent) gets the complete set, in parts.
    const again = follow(h.dispatcher, 'n0')
    await waitFor(() => again.held.size === 12_000, 'again.held.size === 12_000', 20_000)
    expect(again.messages.every((m) => m.type === 'complete')).toBe(true)
    expect(again.messages.map((m) => m.more === true)).toEqual([
      ...Array.from({ length: 23 }, () => true),
      false,
    ])
  })
})

describe('Agent status reports', () => {
  it('sends at most 1,000 updates per report, in order, however many are pending', async () => {
    const sizes: number[] = []
    const seen: TaskStatusUpdate[] = []
    const list: Assignment[] = Array.from({ length: 2500 }, (_, i) => ({
      taskId: `t${i}`,
      serviceId: 'svc',
      serviceName: 'web',
      slot: i + 1,
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
    }))
    const api: DispatcherApi = {
      async register() {},
      async heartbeat() {
        return { periodMs: 60_000 }
      },
      async *assignments(_id, signal) {
        // 2,500 tasks: a complete set in five parts.
        yield* assignmentsMessages('complete', list, [], undefined)
        await new Promise((r) => signal.addEventListener('abort', r, { once: true }))
      },
      async updateStatus(_id, updates) {
        if (updates.length > 1000) throw new TypeError('updates: expected a list')
        sizes.push(updates.length)
        seen.push(...updates)
      },
      async *mesh() {},
    }
    const agent = new Agent({
      nodeId: 'n0',
      dispatcher: api,
      info: {
        hostname: 'n0',
        platform: { os: 'linux', architecture: 'x86_64' },
        resources: { nanoCPUs: 1e9, memoryBytes: 1e9 },
        engineVersion: 'x',
      },
      addr: '127.0.0.1',
      stepMs: 1,
    })
    cleanups.push(() => void agent.stop())
    await agent.start()
    await waitFor(
      () => seen.filter((u) => u.state === 'running').length === 2500,
      "seen.filter((u) => u.state === 'running').length === 2500",
      60_000,
    )
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1000)
    expect(sizes.some((s) => s > 1)).toBe(true)
    // Every task's states arrive in the order it went through them.
    const t0 = seen.filter((u) => u.taskId === 't0').map((u) => u.state)
    expect(t0).toEqual([...t0].sort((a, b) => order(a) - order(b)))
  })
})

describe('Agent assignment lists', () => {
  it('acts only on what changed when the same tasks come again, and on a new desired state', async () => {
    const a0 = (desiredState: Assignment['desiredState']): Assignment => ({
      taskId: 't0',
      serviceId: 'svc',
      serviceName: 'web',
      slot: 1,
      nodeId: 'n0',
      image: 'busybox',
      desiredState,
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
    const lists: Assignment[][] = []
    let push: (() => void) | undefined
    const reports: TaskStatusUpdate[] = []
    const api: DispatcherApi = {
      async register() {},
      async heartbeat() {
        return { periodMs: 60_000 }
      },
      async *assignments(_id, signal) {
        while (!signal.aborted) {
          const l = lists.shift()
          if (l) yield complete(l)
          else await new Promise<void>((r) => (push = r))
        }
      },
      async updateStatus(_id, updates) {
        reports.push(...updates)
      },
      async *mesh() {},
    }
    const executor = simulatedExecutor({ hostname: 'n0', addr: '127.0.0.1', stepMs: 1, serveTasks: false })
    let updates = 0
    const controller = executor.controller.bind(executor)
    executor.controller = (a) => {
      const c = controller(a)
      const update = c.update.bind(c)
      c.update = (next) => {
        updates++
        update(next)
      }
      return c
    }
    const agent = new Agent({ nodeId: 'n0', dispatcher: api, info: INFO, addr: '127.0.0.1', executor })
    cleanups.push(() => void agent.stop().then(() => executor.close()))
    const give = (l: Assignment[]) => {
      lists.push(l)
      push?.()
    }
    await agent.start()
    give([a0('running')])
    await waitFor(() => reports.some((r) => r.state === 'running'), 'running', 10_000)
    for (let i = 0; i < 20; i++) give([a0('running')])
    await waitFor(() => lists.length === 0, 'lists read', 10_000)
    expect(updates).toBe(0)
    give([a0('shutdown')])
    await waitFor(() => reports.some((r) => r.state === 'shutdown'), 'shutdown', 10_000)
    expect(updates).toBe(1)
  })
})

const INFO = {
  hostname: 'n0',
  platform: { os: 'linux', architecture: 'x86_64' },
  resources: { nanoCPUs: 1e9, memoryBytes: 1e9 },
  engineVersion: 'x',
}

const STATES: TaskState[] = [
  'new',
  'pending',
  'assigned',
  'accepted',
  'preparing',
  'ready',
  'starting',
  'running',
]
const order = (s: TaskState) => STATES.indexOf(s)
