import type { Node, ServiceSpec, Task } from '@swarmkit/store'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ConstraintSet, updateService } from '../src/index.js'
import { serviceSpec, taskSpec } from './fixtures.js'
import { type Harness, harness } from './harness.js'

const SLOW = process.env.SWARMKIT_SLOW === '1'
const runs = (fast: number, slow: number) => (SLOW ? slow : fast)
/** `SWARMKIT_SEED=<n>` replays (or explores) another seed. */
const seed = (fixed: number) => (process.env.SWARMKIT_SEED ? Number(process.env.SWARMKIT_SEED) : fixed)

const nodeArb = fc.record({
  zone: fc.constantFrom('a', 'b', 'c'),
  state: fc.constantFrom('ready', 'ready', 'ready', 'ready', 'down'),
  availability: fc.constantFrom('active', 'active', 'active', 'pause', 'drain'),
})

const serviceArb = fc.record({
  global: fc.boolean(),
  replicas: fc.integer({ min: 0, max: 12 }),
  zone: fc.option(fc.constantFrom('a', 'b', 'c'), { nil: undefined }),
  maxReplicas: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
})

type NodeShape = { zone: string; state: string; availability: string }
type ServiceShape = {
  global: boolean
  replicas: number
  zone: string | undefined
  maxReplicas: number | undefined
}

const updateArb = fc.option(
  fc.record({
    parallelism: fc.integer({ min: 0, max: 3 }),
    order: fc.constantFrom('stop-first' as const, 'start-first' as const),
    failureAction: fc.constantFrom('pause' as const, 'continue' as const, 'rollback' as const),
    monitor: fc.constantFrom(0, 1e9, 5e9),
  }),
  { nil: undefined },
)

function specOf(i: number, s: ServiceShape, update?: ServiceSpec['updateConfig']): ServiceSpec {
  return serviceSpec(`svc${i}`, {
    ...(update ? { updateConfig: update, rollbackConfig: update } : {}),
    mode: s.global ? { global: {} } : { replicated: { replicas: s.replicas } },
    taskTemplate: taskSpec({
      placement: {
        ...(s.zone ? { constraints: [`node.labels.zone==${s.zone}`] } : {}),
        ...(s.maxReplicas && !s.global ? { maxReplicas: s.maxReplicas } : {}),
      },
    }),
  })
}

/** Checks the converged cluster against the specs. */
function checkInvariants(h: Harness, ids: string[], shapes: ServiceShape[], spread = true): void {
  const nodes = h.store.view((tx) => tx.find('nodes'))
  const byId = new Map(nodes.map((n) => [n.id, n]))
  const schedulable = (n: Node) => n.status.state === 'ready' && n.spec.availability === 'active'
  shapes.forEach((shape, i) => {
    const id = ids[i] as string
    const svc = h.getService(id)
    const running = h.running(id)
    const constraints = ConstraintSet.parse(svc.spec.taskTemplate.placement?.constraints ?? [])
    const eligible = nodes.filter((n) => schedulable(n) && constraints.matches(n))
    const perNode = new Map<string, number>()
    for (const t of running) {
      const n = byId.get(t.nodeId)
      expect(n, 'runs on a known node').toBeDefined()
      expect(constraints.matches(n as Node), 'constraint holds').toBe(true)
      perNode.set(t.nodeId, (perNode.get(t.nodeId) ?? 0) + 1)
    }
    if (shape.global) {
      expect(running.length, `global ${id}: one per eligible node`).toBe(eligible.length)
      for (const c of perNode.values()) expect(c).toBe(1)
      return
    }
    const cap = shape.maxReplicas
      ? eligible.length * shape.maxReplicas
      : eligible.length
        ? Number.POSITIVE_INFINITY
        : 0
    expect(running.length, `replicated ${id}: N running`).toBe(Math.min(shape.replicas, cap))
    const slots = running.map((t) => t.slot)
    expect(new Set(slots).size, 'one running task per slot').toBe(slots.length)
    if (shape.maxReplicas) for (const c of perNode.values()) expect(c).toBeLessThanOrEqual(shape.maxReplicas)
    if (spread && !shape.zone && !shape.maxReplicas && eligible.length > 0) {
      const counts = eligible.map((n) => perNode.get(n.id) ?? 0)
      expect(Math.max(...counts) - Math.min(...counts), 'spread differs by at most one').toBeLessThanOrEqual(
        1,
      )
    }
  })
}

/** After arbitrary changes (paused nodes may keep tasks; nothing is rebalanced), the specs still hold. */
function checkConverged(h: Harness, ids: string[], shapes: ServiceShape[]): void {
  const nodes = h.store.view((tx) => tx.find('nodes'))
  const byId = new Map(nodes.map((n) => [n.id, n]))
  const usable = (n: Node) => n.status.state === 'ready' && n.spec.availability === 'active'
  shapes.forEach((shape, i) => {
    const id = ids[i] as string
    const svc = h.getService(id)
    const constraints = ConstraintSet.parse(svc.spec.taskTemplate.placement?.constraints ?? [])
    const running = h.running(id)
    const perNode = new Map<string, number>()
    for (const t of running) {
      const n = byId.get(t.nodeId) as Node
      expect(n.status.state, 'runs on a node that is up').toBe('ready')
      expect(n.spec.availability, 'not on a drained node').not.toBe('drain')
      expect(constraints.matches(n), 'constraint holds').toBe(true)
      // (an update paused by a failure, as swarm's default failure action does, leaves older tasks running)
      if (!svc.updateStatus?.state.endsWith('paused'))
        expect(JSON.stringify(t.spec), 'at the current spec').toBe(JSON.stringify(svc.spec.taskTemplate))
      perNode.set(t.nodeId, (perNode.get(t.nodeId) ?? 0) + 1)
    }
    const eligible = nodes.filter((n) => usable(n) && constraints.matches(n))
    if (shape.global) {
      for (const n of eligible) expect(perNode.get(n.id), `global ${id} on ${n.id}`).toBe(1)
      for (const c of perNode.values()) expect(c).toBe(1)
      return
    }
    const cap = shape.maxReplicas
      ? eligible.length * shape.maxReplicas
      : eligible.length
        ? Number.POSITIVE_INFINITY
        : 0
    // (the service's own replica count: a rollback restores the previous spec, which may be a scale)
    const mode = svc.spec.mode
    const replicas = 'replicated' in mode ? mode.replicated.replicas : shape.replicas
    expect(running.length, `replicated ${id}: N running`).toBe(Math.min(replicas, cap))
    expect(new Set(running.map((t) => t.slot)).size, 'one running task per slot').toBe(running.length)
    if (shape.maxReplicas) for (const c of perNode.values()) expect(c).toBeLessThanOrEqual(shape.maxReplicas)
  })
}

describe('properties', () => {
  it('converges: N per replicated service, one per eligible node for global, constraints and limits hold', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(nodeArb, { minLength: 1, maxLength: 8 }),
        fc.array(serviceArb, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 0, max: 7 }),
        fc.constantFrom('drain', 'down', 'relabel', 'join'),
        async (nodeShapes: NodeShape[], shapes: ServiceShape[], victim: number, change: string) => {
          const h = await harness({ seed: nodeShapes.length * 31 + shapes.length })
          try {
            await h.store.update((tx) => {
              nodeShapes.forEach((n, i) => {
                tx.create('nodes', {
                  id: `n${i}`,
                  spec: {
                    labels: { zone: n.zone },
                    role: 'worker',
                    availability: n.availability as Node['spec']['availability'],
                  },
                  role: 'worker',
                  description: {
                    hostname: `h${i}`,
                    platform: { os: 'linux', architecture: 'x86_64' },
                    resources: { nanoCPUs: 4e9, memoryBytes: 2 ** 33 },
                    engine: { engineVersion: '28', labels: {}, plugins: [] },
                  },
                  status: { state: n.state as Node['status']['state'], addr: `10.0.0.${i + 1}` },
                })
              })
            })
            const ids: string[] = []
            for (const [i, s] of shapes.entries()) ids.push((await h.service(specOf(i, s))).id)
            await h.advance(1)
            checkInvariants(h, ids, shapes)
            // Then the cluster changes under the services, and they converge again.
            const id = `n${victim % nodeShapes.length}`
            if (change === 'join') await h.addNodes(2, { labels: { zone: 'a' } }, 'x')
            else
              await h.setNode(id, (n) =>
                change === 'drain'
                  ? { ...n, spec: { ...n.spec, availability: 'drain' } }
                  : change === 'down'
                    ? { ...n, status: { ...n.status, state: 'down' } }
                    : { ...n, spec: { ...n.spec, labels: { zone: n.spec.labels.zone === 'a' ? 'b' : 'a' } } },
              )
            await h.advance(6_000)
            // Like swarm, running tasks are not rebalanced onto nodes that join.
            checkInvariants(h, ids, shapes, change !== 'join')
          } finally {
            await h.stop()
          }
        },
      ),
      { seed: seed(7), numRuns: runs(30, 300) },
    )
  })

  it('converges again after a random sequence of node, service and task events', async () => {
    const opArb = fc.oneof(
      fc.record({ kind: fc.constant('drain' as const), node: fc.nat(9) }),
      fc.record({ kind: fc.constant('activate' as const), node: fc.nat(9) }),
      fc.record({ kind: fc.constant('down' as const), node: fc.nat(9) }),
      fc.record({ kind: fc.constant('up' as const), node: fc.nat(9) }),
      fc.record({
        kind: fc.constant('relabel' as const),
        node: fc.nat(9),
        zone: fc.constantFrom('a', 'b', 'c'),
      }),
      fc.record({ kind: fc.constant('join' as const), zone: fc.constantFrom('a', 'b', 'c') }),
      fc.record({ kind: fc.constant('leave' as const), node: fc.nat(9) }),
      fc.record({
        kind: fc.constant('scale' as const),
        service: fc.nat(3),
        replicas: fc.integer({ min: 0, max: 12 }),
      }),
      fc.record({
        kind: fc.constant('image' as const),
        service: fc.nat(3),
        image: fc.constantFrom('v2', 'v3'),
      }),
      fc.record({ kind: fc.constant('fail' as const), service: fc.nat(3), pick: fc.nat(20) }),
    )
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          nodeArb.filter((n) => n.availability !== 'pause'),
          { minLength: 1, maxLength: 6 },
        ),
        fc.array(serviceArb, { minLength: 1, maxLength: 4 }),
        fc.array(opArb, { minLength: 1, maxLength: 14 }),
        updateArb,
        async (nodeShapes: NodeShape[], shapes: ServiceShape[], ops, update) => {
          const h = await harness({ seed: nodeShapes.length * 17 + ops.length })
          try {
            await h.store.update((tx) => {
              nodeShapes.forEach((n, i) => {
                tx.create('nodes', {
                  id: `n${i}`,
                  spec: {
                    labels: { zone: n.zone },
                    role: 'worker',
                    availability: n.availability as Node['spec']['availability'],
                  },
                  role: 'worker',
                  description: {
                    hostname: `h${i}`,
                    platform: { os: 'linux', architecture: 'x86_64' },
                    resources: { nanoCPUs: 4e9, memoryBytes: 2 ** 33 },
                    engine: { engineVersion: '28', labels: {}, plugins: [] },
                  },
                  status: { state: n.state as Node['status']['state'], addr: `10.0.0.${i + 1}` },
                })
              })
            })
            const ids: string[] = []
            for (const [i, s] of shapes.entries()) ids.push((await h.service(specOf(i, s, update))).id)
            await h.advance(1)
            let nodeCount = nodeShapes.length
            for (const op of ops) {
              const nodeId = 'node' in op ? `n${op.node % nodeCount}` : ''
              const gone = nodeId !== '' && !h.store.view((tx) => tx.get('nodes', nodeId))
              if (gone && op.kind !== 'leave') continue
              const si = 'service' in op ? op.service % shapes.length : 0
              const svcId = ids[si] as string
              switch (op.kind) {
                case 'drain':
                case 'activate':
                  await h.setNode(nodeId, (n) => ({
                    ...n,
                    spec: { ...n.spec, availability: op.kind === 'drain' ? 'drain' : 'active' },
                  }))
                  break
                case 'down':
                case 'up':
                  await h.setNode(nodeId, (n) => ({
                    ...n,
                    status: { ...n.status, state: op.kind === 'down' ? 'down' : 'ready' },
                  }))
                  break
                case 'relabel':
                  await h.setNode(nodeId, (n) => ({ ...n, spec: { ...n.spec, labels: { zone: op.zone } } }))
                  break
                case 'leave':
                  // the node is removed from the cluster (docker node rm --force)
                  await h.store.update((tx) => {
                    if (tx.get('nodes', nodeId)) tx.delete('nodes', nodeId)
                  })
                  break
                case 'join':
                  await h.store.update((tx) => {
                    tx.create('nodes', {
                      id: `n${nodeCount}`,
                      spec: { labels: { zone: op.zone }, role: 'worker', availability: 'active' },
                      role: 'worker',
                      status: { state: 'ready', addr: `10.0.1.${nodeCount}` },
                    })
                  })
                  nodeCount++
                  break
                case 'scale': {
                  const shape = shapes[si] as ServiceShape
                  if (shape.global) break
                  shapes[si] = { ...shape, replicas: op.replicas }
                  const cur = h.getService(svcId)
                  await updateService(h.store, svcId, {
                    ...cur.spec,
                    mode: { replicated: { replicas: op.replicas } },
                  })
                  break
                }
                case 'image': {
                  const cur = h.getService(svcId)
                  await updateService(h.store, svcId, {
                    ...cur.spec,
                    taskTemplate: { ...cur.spec.taskTemplate, containerSpec: { image: op.image } },
                  })
                  break
                }
                case 'fail': {
                  const running = h.running(svcId)
                  const victim = running[op.pick % Math.max(1, running.length)]
                  if (victim) await h.exec.exit(victim.id, 'failed')
                  break
                }
              }
              await h.advance(700)
            }
            // Long enough for restarts (5 s) and rolling updates (one slot at a time, 5 s monitor each).
            await h.advance(200_000)
            checkConverged(h, ids, shapes)
          } finally {
            await h.stop()
          }
        },
      ),
      { seed: seed(23), numRuns: runs(15, 150) },
    )
  })

  it("never overcommits a node; what does not fit stays pending with swarm's explanation", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 6 }),
        fc.array(
          fc.record({ replicas: fc.integer({ min: 0, max: 8 }), cpu: fc.constantFrom(0.5, 1, 2, 3) }),
          { minLength: 1, maxLength: 4 },
        ),
        async (cpus, services) => {
          const h = await harness({ seed: cpus.length * 7 + services.length })
          try {
            for (const c of cpus) await h.addNodes(1, { cpu: c * 1e9 })
            const ids: string[] = []
            for (const [i, sv] of services.entries()) {
              const spec = serviceSpec(`svc${i}`, {
                mode: { replicated: { replicas: sv.replicas } },
                taskTemplate: taskSpec({
                  resources: { reservations: { nanoCPUs: sv.cpu * 1e9, memoryBytes: 0 } },
                }),
              })
              ids.push((await h.service(spec)).id)
            }
            await h.advance(1)
            const nodes = h.store.view((tx) => tx.find('nodes'))
            const used = new Map<string, number>()
            for (const t of h.running()) {
              used.set(t.nodeId, (used.get(t.nodeId) ?? 0) + (t.spec.resources?.reservations?.nanoCPUs ?? 0))
            }
            for (const n of nodes) {
              expect(used.get(n.id) ?? 0, `cpu on ${n.id}`).toBeLessThanOrEqual(
                n.description?.resources.nanoCPUs ?? 0,
              )
            }
            services.forEach((sv, i) => {
              const tasks = h.tasks(ids[i])
              const running = tasks.filter((t) => t.status.state === 'running')
              const waiting = tasks.filter((t) => t.status.state === 'pending')
              expect(running.length + waiting.length, 'every slot runs or waits').toBe(sv.replicas)
              for (const t of waiting)
                expect(t.status.err).toMatch(/^no suitable node \(insufficient resources on \d+ nodes?\)$/)
            })
          } finally {
            await h.stop()
          }
        },
      ),
      { seed: seed(31), numRuns: runs(20, 200) },
    )
  })

  it('a stop-first rolling update never has more than parallelism slots down, and finishes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 4 }),
        async (nodes, replicas, parallelism) => {
          const h = await harness({ seed: nodes * 100 + replicas })
          try {
            await h.addNodes(nodes)
            const s = await h.service(
              serviceSpec('web', {
                mode: { replicated: { replicas } },
                updateConfig: { parallelism, order: 'stop-first', monitor: 1e9 },
              }),
            )
            await h.settle()
            let maxDown = 0
            // Evaluated synchronously at every commit, so no intermediate state is missed.
            const w = h.store.watch({
              table: 'tasks',
              filter: () => {
                const tasks = h.store.view((tx) => tx.find('tasks', { serviceId: s.id }))
                const up = new Set(tasks.filter((t: Task) => t.status.state === 'running').map((t) => t.slot))
                let down = 0
                for (let slot = 1; slot <= replicas; slot++) if (!up.has(slot)) down++
                maxDown = Math.max(maxDown, down)
                return false
              },
            })
            await updateService(h.store, s.id, {
              ...h.getService(s.id).spec,
              taskTemplate: taskSpec({ containerSpec: { image: 'nginx:2' } }),
            })
            await h.advance(replicas * 2_000 + 5_000)
            w.close()
            expect(maxDown).toBeLessThanOrEqual(parallelism)
            expect(h.getService(s.id).updateStatus?.state).toBe('completed')
            const running = h.running(s.id)
            expect(running).toHaveLength(replicas)
            expect(running.every((t) => t.spec.containerSpec.image === 'nginx:2')).toBe(true)
          } finally {
            await h.stop()
          }
        },
      ),
      { seed: seed(11), numRuns: runs(20, 200) },
    )
  })

  it('rolls back when failures exceed the max failure ratio', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 8 }),
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom(0, 0.1, 0.3),
        async (replicas, parallelism, ratio) => {
          const h = await harness({
            behavior: (t) => (t.spec.containerSpec.image === 'bad' ? 'fail' : 'run'),
          })
          try {
            await h.addNodes(3)
            const s = await h.service(
              serviceSpec('web', {
                mode: { replicated: { replicas } },
                updateConfig: {
                  parallelism,
                  failureAction: 'rollback',
                  maxFailureRatio: ratio,
                  monitor: 1e9,
                },
                rollbackConfig: { parallelism: 0, monitor: 1e9 },
              }),
            )
            await h.settle()
            await updateService(h.store, s.id, {
              ...h.getService(s.id).spec,
              taskTemplate: taskSpec({
                containerSpec: { image: 'bad' },
                restartPolicy: { condition: 'none' },
              }),
            })
            await h.advance(60_000)
            expect(h.getService(s.id).updateStatus?.state).toBe('rollback_completed')
            const running = h.running(s.id)
            expect(running).toHaveLength(replicas)
            expect(running.every((t) => t.spec.containerSpec.image === 'nginx:alpine')).toBe(true)
          } finally {
            await h.stop()
          }
        },
      ),
      { seed: seed(13), numRuns: runs(15, 150) },
    )
  })
})
