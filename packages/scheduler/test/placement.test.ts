import type { Task } from '@swarmkit/store'
import { describe, expect, it } from 'vitest'
import { createPlacer, explainFailures, explainFilter, nodeMatchesConstraints } from '../src/index.js'
import { node, task, taskSpec } from './fixtures.js'

function tasks(n: number, serviceId: string, over: Partial<Task> = {}): Task[] {
  return Array.from({ length: n }, (_, i) => task(`${serviceId}-${i}`, serviceId, { slot: i + 1, ...over }))
}

function spread(placer: ReturnType<typeof createPlacer>, ids: string[], serviceId?: string): number[] {
  return ids.map((id) => placer.tasksOn(id, serviceId))
}

describe('filters', () => {
  it('skips nodes that are not ready or not active', () => {
    const p = createPlacer()
    p.setNode(node('a', { state: 'down' }))
    p.setNode(node('b', { availability: 'pause' }))
    p.setNode(node('c', { availability: 'drain' }))
    const r = p.place(tasks(1, 's'))
    expect(r.assigned).toEqual([])
    expect(r.unplaced[0]?.reason).toBe('no suitable node (3 nodes not available for new tasks)')
  })

  it('checks CPU, memory and generic resources against what is free', () => {
    const p = createPlacer()
    p.setNode(node('a', { cpu: 2e9, mem: 2 ** 30 }))
    p.setNode(
      node('b', { cpu: 1e9, mem: 2 ** 30, generic: [{ discreteResourceSpec: { kind: 'gpu', value: 2 } }] }),
    )
    const spec = taskSpec({
      resources: {
        reservations: {
          nanoCPUs: 1e9,
          memoryBytes: 2 ** 29,
          genericResources: [{ discreteResourceSpec: { kind: 'gpu', value: 1 } }],
        },
      },
    })
    const r = p.place(tasks(3, 's', { spec }))
    expect(r.assigned.map((a) => a.nodeId)).toEqual(['b'])
    expect(r.assigned[0]?.genericResources).toEqual([{ discreteResourceSpec: { kind: 'gpu', value: 1 } }])
    expect(r.unplaced.map((u) => u.reason)).toEqual([
      'no suitable node (insufficient resources on 2 nodes)',
      'no suitable node (insufficient resources on 2 nodes)',
    ])
  })

  it('hands out named generic resources by value and frees them when the task goes', () => {
    const p = createPlacer()
    p.setNode(
      node('a', {
        generic: [
          { namedResourceSpec: { kind: 'gpu', value: 'GPU-0' } },
          { namedResourceSpec: { kind: 'gpu', value: 'GPU-1' } },
        ],
      }),
    )
    const spec = taskSpec({
      resources: {
        reservations: {
          nanoCPUs: 0,
          memoryBytes: 0,
          genericResources: [{ discreteResourceSpec: { kind: 'gpu', value: 1 } }],
        },
      },
    })
    const r = p.place(tasks(3, 's', { spec }))
    expect(r.assigned.map((a) => a.genericResources)).toEqual([
      [{ namedResourceSpec: { kind: 'gpu', value: 'GPU-0' } }],
      [{ namedResourceSpec: { kind: 'gpu', value: 'GPU-1' } }],
    ])
    p.removeTask('s-0')
    expect(p.place([task('x', 's', { spec })]).assigned[0]?.genericResources).toEqual([
      { namedResourceSpec: { kind: 'gpu', value: 'GPU-0' } },
    ])
  })

  it('applies constraints and explains the failures, most first', () => {
    const p = createPlacer()
    p.setNode(node('a', { labels: { zone: 'east' } }))
    p.setNode(node('b', { labels: { zone: 'west' } }))
    p.setNode(node('c', { labels: { zone: 'west' } }))
    p.setNode(node('d', { labels: { zone: 'west' }, cpu: 0 }))
    const spec = taskSpec({
      placement: { constraints: ['node.labels.zone==north'] },
      resources: { reservations: { nanoCPUs: 1e9, memoryBytes: 0 } },
    })
    const r = p.place(tasks(1, 's', { spec }))
    expect(r.unplaced[0]?.reason).toBe(
      'no suitable node (scheduling constraints not satisfied on 3 nodes; insufficient resources on 1 node)',
    )
  })

  it('checks the platform, normalizing x86_64 and aarch64', () => {
    const p = createPlacer()
    p.setNode(node('a', { arch: 'aarch64' }))
    p.setNode(node('b', { arch: 'x86_64', os: 'windows' }))
    const spec = taskSpec({ placement: { platforms: [{ os: 'linux', architecture: 'arm64' }] } })
    expect(p.place(tasks(1, 's', { spec })).assigned[0]?.nodeId).toBe('a')
    const spec2 = taskSpec({ placement: { platforms: [{ os: 'linux', architecture: 'amd64' }] } })
    expect(p.place(tasks(1, 't', { spec: spec2 })).unplaced[0]?.reason).toBe(
      'no suitable node (unsupported platform on 2 nodes)',
    )
  })

  it('puts at most one task per node for a host-mode published port', () => {
    const p = createPlacer()
    p.setNode(node('a'))
    p.setNode(node('b'))
    const endpoint = {
      spec: { mode: 'vip' as const },
      ports: [
        { protocol: 'tcp' as const, targetPort: 80, publishedPort: 8080, publishMode: 'host' as const },
      ],
      virtualIPs: [],
    }
    const r = p.place(tasks(3, 's', { endpoint }))
    expect(r.assigned.map((a) => a.nodeId).sort()).toEqual(['a', 'b'])
    expect(r.unplaced[0]?.reason).toBe('no suitable node (host-mode port already in use on 2 nodes)')
    expect(p.place([task('other', 'o', { endpoint })]).unplaced[0]?.reason).toBe(
      'no suitable node (host-mode port already in use on 2 nodes)',
    )
  })

  it('respects max replicas per node', () => {
    const p = createPlacer()
    p.setNode(node('a'))
    p.setNode(node('b'))
    const spec = taskSpec({ placement: { maxReplicas: 2 } })
    const r = p.place(tasks(5, 's', { spec }))
    expect(r.assigned).toHaveLength(4)
    expect(spread(p, ['a', 'b'], 's')).toEqual([2, 2])
    expect(r.unplaced[0]?.reason).toBe('no suitable node (max replicas per node limit exceed)')
  })

  it('checks a preassigned (global) task against its own node only', () => {
    const p = createPlacer()
    p.setNode(node('a', { labels: { gpu: 'no' } }))
    p.setNode(node('b', { labels: { gpu: 'yes' } }))
    const spec = taskSpec({ placement: { constraints: ['node.labels.gpu==yes'] } })
    const r = p.place([
      task('g1', 'g', { nodeId: 'a', spec, slot: 0 }),
      task('g2', 'g', { nodeId: 'b', spec, slot: 0 }),
    ])
    expect(r.assigned.map((a) => [a.task.id, a.nodeId])).toEqual([['g2', 'b']])
    expect(r.unplaced[0]?.reason).toBe('no suitable node (scheduling constraints not satisfied on 1 node)')
  })

  it('names the argument on programmer errors', () => {
    const p = createPlacer()
    expect(() => p.place('x' as never)).toThrow(/tasks/)
    expect(() => p.setNode(null as never)).toThrow(/node/)
    expect(() => p.addTask({} as never)).toThrow(/task/)
    expect(() => p.recordFailure(task('t', 's'), Number.NaN)).toThrow(/now/)
    expect(() => explainFilter('bogus' as never, 1)).toThrow(/filter/)
    expect(() => explainFilter('ready', -1)).toThrow(RangeError)
    expect(() => nodeMatchesConstraints(undefined as never, [])).toThrow(/node/)
  })

  it('formats explanations like swarm', () => {
    expect(explainFailures([0, 0, 0, 0, 0, 0])).toBe('no suitable node')
    expect(explainFailures([1, 2, 0, 0, 0, 0])).toBe(
      'no suitable node (insufficient resources on 2 nodes; 1 node not available for new tasks)',
    )
  })
})

describe('spread', () => {
  it('spreads a service evenly, then by total tasks', () => {
    const p = createPlacer()
    for (const id of ['a', 'b', 'c']) p.setNode(node(id))
    p.place(tasks(2, 'other')) // a and b hold one task each
    p.place(tasks(4, 's'))
    expect(spread(p, ['a', 'b', 'c'], 's')).toEqual([1, 1, 2])
    expect(spread(p, ['a', 'b', 'c'])).toEqual([2, 2, 2])
  })

  it('puts a node where the service failed 5 times in 5 minutes last', () => {
    const p = createPlacer()
    p.setNode(node('a'))
    p.setNode(node('b'))
    const failed = task('f', 's', { nodeId: 'a' })
    for (let i = 0; i < 5; i++) p.recordFailure(failed, 1000 + i)
    const r = p.place(tasks(2, 's'), 2000)
    expect(r.assigned.map((a) => a.nodeId)).toEqual(['b', 'b'])
    // five minutes later the failures have aged out
    const later = p.place(
      tasks(2, 's', { id: 'z' } as Partial<Task>).map((t, i) => ({ ...t, id: `later-${i}` })),
      2000 + 5 * 60_000 + 10,
    )
    expect(later.assigned.map((a) => a.nodeId)).toEqual(['a', 'a'])
  })

  it('places on the nodes of placeLast only after the others, and still when they are all there is', () => {
    const last = new Set(['a'])
    const p = createPlacer({ placeLast: (id) => last.has(id) })
    for (const id of ['a', 'b', 'c']) p.setNode(node(id))
    // Node a is the emptiest, and still gets nothing while b and c are eligible.
    p.place(tasks(4, 'other').map((t) => ({ ...t, nodeId: '' })))
    expect(spread(p, ['a', 'b', 'c'])).toEqual([0, 2, 2])
    // Before a node that failed the service five times, though; and when nothing else is eligible.
    for (const id of ['b', 'c']) {
      const failed = task(`f-${id}`, 's', { nodeId: id })
      for (let i = 0; i < 5; i++) p.recordFailure(failed, 1000 + i)
    }
    expect(p.place(tasks(2, 's'), 2000).assigned.map((x) => x.nodeId)).toEqual(['a', 'a'])
    p.setNode(node('b', { state: 'down' }))
    p.setNode(node('c', { state: 'down' }))
    expect(p.place(tasks(1, 't')).assigned.map((x) => x.nodeId)).toEqual(['a'])
    for (const id of ['b', 'c']) p.setNode(node(id))
    // Heard again: ranked as any other (the emptiest first).
    last.clear()
    expect(spread(p, ['a', 'b', 'c'])).toEqual([3, 2, 2])
    expect(
      p
        .place(tasks(3, 'u'))
        .assigned.map((x) => x.nodeId)
        .sort(),
    ).toEqual(['a', 'b', 'c'])
    expect(() => createPlacer({ placeLast: 1 as never })).toThrow(/options.placeLast/)
  })

  it('splits evenly over label values first, hierarchically', () => {
    const p = createPlacer()
    // zone east has 1 node, zone west 3 nodes
    p.setNode(node('e1', { labels: { zone: 'east', rack: 'r1' } }))
    p.setNode(node('w1', { labels: { zone: 'west', rack: 'r1' } }))
    p.setNode(node('w2', { labels: { zone: 'west', rack: 'r1' } }))
    p.setNode(node('w3', { labels: { zone: 'west', rack: 'r2' } }))
    const spec = taskSpec({
      placement: {
        preferences: [
          { spread: { spreadDescriptor: 'node.labels.zone' } },
          { spread: { spreadDescriptor: 'node.labels.rack' } },
        ],
      },
    })
    p.place(tasks(8, 's', { spec }))
    expect(spread(p, ['e1'], 's')).toEqual([4])
    // west's 4 split over racks r1 (2 nodes) and r2 (1 node): 2 and 2
    expect(spread(p, ['w1', 'w2', 'w3'], 's')).toEqual([1, 1, 2])
  })

  it('sends the rest elsewhere when a preference branch is full', () => {
    const p = createPlacer()
    p.setNode(node('e1', { labels: { zone: 'east' }, cpu: 1e9 }))
    p.setNode(node('w1', { labels: { zone: 'west' } }))
    const spec = taskSpec({
      placement: { preferences: [{ spread: { spreadDescriptor: 'node.labels.zone' } }] },
      resources: { reservations: { nanoCPUs: 1e9, memoryBytes: 0 } },
    })
    const r = p.place(tasks(4, 's', { spec }))
    expect(r.unplaced).toEqual([])
    expect(spread(p, ['e1', 'w1'], 's')).toEqual([1, 3])
  })

  it('places a batch linearly: 20k tasks on 2k nodes differ by at most one', () => {
    const p = createPlacer()
    const ids = Array.from({ length: 2000 }, (_, i) => `n${i}`)
    for (const id of ids) p.setNode(node(id))
    const r = p.place(tasks(20_001, 's'))
    expect(r.assigned).toHaveLength(20_001)
    const counts = spread(p, ids, 's')
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1)
  })

  it('never accounts a task twice', () => {
    const p = createPlacer()
    p.setNode(node('a'))
    const t = task('t', 's', { nodeId: 'a', status: { timestamp: 0, state: 'running', message: '' } })
    p.addTask(t)
    p.addTask(t)
    expect(p.tasksOn('a')).toBe(1)
    p.removeNode('a')
    expect(p.hasTask('t')).toBe(false)
  })
})
