// Scale with a leader kill (issue 18's correctness check, smaller): three manager processes, simulated
// workers each with its own certificate and mutual TLS session, a replicated service updated at
// parallelism 0 with the leader SIGKILLed half way; afterwards every slot runs exactly one task of the new
// spec. SWARMKIT_SLOW=1 runs it at 200 nodes and 4,000 tasks; otherwise at 30 nodes and 600 tasks.
import { afterAll, describe, expect, it } from 'vitest'
import { type SimulatedWorker, startSimulatedWorker } from '../../src/index.js'
import { ChaosCluster, until } from './managers.js'
import { SLOW } from './profile.js'

const NODES = SLOW ? 200 : 30
const TASKS = SLOW ? 4000 : 600

describe('a cluster at scale', () => {
  const cluster = new ChaosCluster({ args: ['--simulated'] })
  const workers: SimulatedWorker[] = []
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop().catch(() => {})))
    await cluster.destroy()
  })

  it('runs every slot exactly once after a rolling update with the leader killed half way', async () => {
    await cluster.form(3)
    const m1 = cluster.managers[0]!
    for (const n of (await m1.request('GET', '/nodes')).json) {
      const r = await m1.request('POST', `/nodes/${n.ID}/update?version=${n.Version.Index}`, {
        ...n.Spec,
        Availability: 'drain',
      })
      expect(r.status).toBe(200)
    }
    const token = (await m1.request('GET', '/swarm')).json.JoinTokens.Worker
    const host = `127.${200 + Math.floor(Math.random() * 50)}`
    /** Running tasks by generation marker and slot, as the workers report them. */
    const running = new Map<string, { gen: string; slot: number }>()
    const gens = new Map<string, { gen: string; slot: number }>()
    let next = 0
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = next++; i < NODES; i = next++) {
          workers.push(
            await startSimulatedWorker({
              joinAddr: cluster.managers[i % 3]!.listenAddr,
              token,
              hostname: `sim-${i}`,
              addr: `${host}.${Math.floor(i / 250)}.${(i % 250) + 1}`,
              onAssignments: (list) => {
                for (const a of list) {
                  const gen = (a.spec.containerSpec.env ?? [])[0] ?? ''
                  if (!gens.has(a.taskId)) gens.set(a.taskId, { gen, slot: a.slot })
                }
              },
              onReport: (u) => {
                const g = gens.get(u.taskId)
                if (u.state === 'running' && g) running.set(u.taskId, g)
                else if (u.state !== 'running') running.delete(u.taskId)
              },
            }),
          )
        }
      }),
    )
    const count = (gen: string) => [...running.values()].filter((r) => r.gen === gen).length
    const create = await m1.request('POST', '/services/create', {
      Name: 'scale',
      TaskTemplate: { ContainerSpec: { Image: 'busybox', Env: ['GEN=1'] } },
      Mode: { Replicated: { Replicas: TASKS } },
      UpdateConfig: { Parallelism: 0 },
    })
    expect(create.status).toBe(201)
    const id = create.json.ID
    await until(`${TASKS} tasks running`, () => count('GEN=1') === TASKS, 240_000)
    const svc = (await m1.request('GET', `/services/${id}`)).json
    const spec = {
      ...svc.Spec,
      TaskTemplate: { ...svc.Spec.TaskTemplate, ContainerSpec: { Image: 'busybox', Env: ['GEN=2'] } },
    }
    const leader = await cluster.waitLeader(60_000)
    const via = cluster.managers.find((m) => m !== leader)!
    const upd = await via.request('POST', `/services/${id}/update?version=${svc.Version.Index}`, spec)
    expect(upd.status).toBe(200)
    await until('half the tasks updated', () => count('GEN=2') >= TASKS / 2, 240_000)
    await leader.kill()
    await until(
      `${TASKS} updated tasks running, none of the old`,
      () => count('GEN=2') === TASKS && count('GEN=1') === 0,
      240_000,
      () => `running: GEN=1 ${count('GEN=1')}, GEN=2 ${count('GEN=2')}\n${cluster.explain()}`,
    )
    const slots = new Map<number, number>()
    for (const r of running.values()) if (r.gen === 'GEN=2') slots.set(r.slot, (slots.get(r.slot) ?? 0) + 1)
    expect([...slots.values()].filter((n) => n !== 1)).toEqual([])
    expect(slots.size).toBe(TASKS)
    expect(Math.min(...slots.keys())).toBe(1)
    expect(Math.max(...slots.keys())).toBe(TASKS)
  })
})
