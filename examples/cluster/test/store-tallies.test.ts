// The metrics' counts kept at commit (store-tallies.ts) equal a count over the store after every change,
// including a restored snapshot, and reading them reads no object from the store.
import { ClusterStore, type Task, type TaskState } from '@swarmkit/store'
import { describe, expect, it } from 'vitest'
import { storeTallies } from '../src/store-tallies.js'

const STATES: TaskState[] = [
  'pending',
  'assigned',
  'accepted',
  'preparing',
  'starting',
  'running',
  'complete',
]

function task(id: string, state: TaskState): Omit<Task, 'meta'> {
  return {
    id,
    spec: { containerSpec: { image: 'busybox' } },
    specVersion: { index: 1 },
    serviceId: 'svc',
    slot: 1,
    nodeId: state === 'pending' ? '' : 'n1',
    serviceAnnotations: { name: 'web', labels: {} },
    status: { timestamp: 0, state, message: state },
    desiredState: 'running',
    networks: [],
  }
}

function recount(store: ClusterStore) {
  return store.view((tx) => {
    const states = new Map<string, number>()
    for (const t of tx.find('tasks')) states.set(t.status.state, (states.get(t.status.state) ?? 0) + 1)
    return { tasks: tx.find('tasks').length, nodes: tx.find('nodes').length, states }
  })
}

/** A small deterministic generator (mulberry32), so a failing seed replays. */
function rng(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('storeTallies', () => {
  for (const seed of [1, 2, 3]) {
    it(`equals a count over the store after every commit and a restore (seed ${seed})`, async () => {
      const random = rng(seed)
      const store = new ClusterStore()
      await store.update((tx) => {
        for (let i = 0; i < 50; i++) tx.create('tasks', task(`t${i}`, 'pending'))
      })
      const tallies = storeTallies(store)
      let next = 50
      let saved: Uint8Array | undefined
      for (let step = 0; step < 60; step++) {
        // A snapshot every 20 steps, restored 9 steps later (a follower installing the leader's).
        if (step % 20 === 10) saved = store.snapshot()
        else if (step % 20 === 19 && saved) store.restore(saved)
        else
          await store.update((tx) => {
            const tasks = tx.find('tasks')
            for (let k = 0; k < 1 + Math.floor(random() * 20); k++) {
              const op = random()
              const t = tasks[Math.floor(random() * tasks.length)]
              if (op < 0.3) tx.create('tasks', task(`t${next++}`, 'pending'))
              else if (op < 0.4 && t && tx.get('tasks', t.id)) tx.delete('tasks', t.id)
              else if (op < 0.45)
                tx.create('nodes', {
                  id: `n${next++}`,
                  spec: { labels: {}, role: 'worker', availability: 'active' },
                  role: 'worker',
                  status: { state: 'ready', addr: '127.0.0.1' },
                })
              else if (t) {
                const cur = tx.get('tasks', t.id)
                const rank = cur ? STATES.indexOf(cur.status.state) : -1
                if (cur && rank >= 0 && rank < STATES.length - 1) {
                  const state = STATES[rank + 1]!
                  tx.update('tasks', { ...cur, nodeId: 'n1', status: { ...cur.status, state } })
                }
              }
            }
          })
        const want = recount(store)
        expect(tallies.objects('tasks'), `seed ${seed} step ${step}`).toBe(want.tasks)
        expect(tallies.objects('nodes'), `seed ${seed} step ${step}`).toBe(want.nodes)
        expect(new Map(tallies.tasksByState()), `seed ${seed} step ${step}`).toEqual(want.states)
      }
      tallies.close()
    })
  }

  it('answers without reading the store', async () => {
    const store = new ClusterStore()
    await store.update((tx) => tx.create('tasks', task('t1', 'pending')))
    const tallies = storeTallies(store)
    let views = 0
    const view = store.view.bind(store)
    store.view = ((fn: never) => {
      views++
      return view(fn)
    }) as typeof store.view
    await store.update((tx) => tx.create('tasks', task('t2', 'pending')))
    expect(tallies.objects('tasks')).toBe(2)
    expect(tallies.tasksByState().get('pending')).toBe(2)
    expect(views).toBe(0)
  })
})
