import { describe, expect, it } from 'vitest'
import { ClusterStore, type Proposer, type Task } from '../src/index.js'
import { service, task } from './fixtures.js'

/** A replicated store (every object decoded from its command) and a second member applying the same log. */
function replicated() {
  let index = 0
  const stores: ClusterStore[] = []
  const proposer: Proposer = async (cmd) => {
    await Promise.resolve()
    index++
    for (const s of stores) s.apply(cmd, index)
    return { index }
  }
  stores.push(new ClusterStore({ proposer }), new ClusterStore())
  return { leader: stores[0]!, follower: stores[1]! }
}

const tasks = (s: ClusterStore): Task[] => s.view((tx) => tx.find('tasks')).sort((a, b) => a.slot - b.slot)

describe('decoded objects share equal parts', () => {
  it('gives the tasks of one command one spec, frozen, on every member', async () => {
    const { leader, follower } = replicated()
    await leader.update((tx) => {
      tx.create('services', service('s1', 'web'))
      for (let i = 1; i <= 3; i++) tx.create('tasks', task(`t${i}`, 's1', i))
    })
    for (const s of [leader, follower]) {
      const [a, b, c] = tasks(s)
      expect(a!.spec).toBe(b!.spec)
      expect(b!.spec).toBe(c!.spec)
      expect(a!.serviceAnnotations).toBe(c!.serviceAnnotations)
      expect(Object.isFrozen(a!.spec)).toBe(true)
      expect(Object.isFrozen(a!.spec.containerSpec)).toBe(true)
      expect(a!.spec).toEqual(task('x', 's1', 1).spec)
    }
  })

  it('shares across commands, and an update keeps what it did not change', async () => {
    const { leader, follower } = replicated()
    await leader.update((tx) => tx.create('tasks', task('t1', 's1', 1)))
    await leader.update((tx) => tx.create('tasks', task('t2', 's1', 2)))
    const [t1] = tasks(follower)
    await leader.update((tx) => {
      const t = tx.get('tasks', 't1')!
      tx.update('tasks', { ...t, status: { timestamp: 1, state: 'running', message: 'started' } })
    })
    const [u1, t2] = tasks(follower)
    expect(u1!.status.state).toBe('running')
    expect(u1!.spec).toBe(t1!.spec)
    expect(t2!.spec).toBe(t1!.spec)
    expect(u1!.networks).toBe(t1!.networks)
  })

  it("never changes one task's spec when another's changes", async () => {
    const { leader, follower } = replicated()
    await leader.update((tx) => {
      for (let i = 1; i <= 2; i++) tx.create('tasks', task(`t${i}`, 's1', i))
    })
    await leader.update((tx) => {
      const t = tx.get('tasks', 't1')!
      tx.update('tasks', {
        ...t,
        spec: { ...t.spec, containerSpec: { ...t.spec.containerSpec, image: 'redis' } },
      })
    })
    for (const s of [leader, follower]) {
      const [a, b] = tasks(s)
      expect(a!.spec.containerSpec.image).toBe('redis')
      expect(b!.spec.containerSpec.image).toBe('nginx:alpine')
      expect(a!.spec).not.toBe(b!.spec)
      expect(() => {
        ;(b!.spec.containerSpec as { image: string }).image = 'x'
      }).toThrow(TypeError)
    }
  })

  it('shares only the same data with its keys in the same order', async () => {
    const { leader, follower } = replicated()
    const t1 = task('t1', 's1', 1)
    const { containerSpec, networks } = t1.spec
    // Equal as data, but the keys in another order: what JSON shows differs, so it is not shared.
    const t2 = { ...task('t2', 's1', 2), spec: { networks, containerSpec } }
    // An undefined field is not the same as a missing one.
    const t3 = { ...task('t3', 's1', 3), labels: { a: '1' } }
    const t4 = { ...task('t4', 's1', 4), labels: { a: '1', b: undefined as unknown as string } }
    await leader.update((tx) => {
      for (const t of [t1, t2, t3, t4]) tx.create('tasks', t)
    })
    const [a, b, c, d] = tasks(follower)
    expect(b!.spec).not.toBe(a!.spec)
    expect(JSON.stringify(b!.spec)).toBe(JSON.stringify(t2.spec))
    expect(JSON.stringify(a!.spec)).toBe(JSON.stringify(t1.spec))
    expect(d!.labels).not.toBe(c!.labels)
    expect(Object.keys(d!.labels!)).toEqual(['a', 'b'])
  })

  it('keeps binary data as plain Uint8Array, equal but not shared across objects', async () => {
    const { leader, follower } = replicated()
    const data = new TextEncoder().encode('hunter2')
    await leader.update((tx) => {
      tx.create('secrets', { id: 'x1', spec: { name: 'one', labels: {}, data } })
      tx.create('secrets', { id: 'x2', spec: { name: 'two', labels: {}, data } })
    })
    const [a, b] = follower.view((tx) => tx.find('secrets')).sort((x, y) => x.id.localeCompare(y.id))
    expect(a!.spec.data.constructor).toBe(Uint8Array)
    expect([...a!.spec.data]).toEqual([...data])
    expect(b!.spec).not.toBe(a!.spec)
  })

  it('shares parts in a restored snapshot too, all of it frozen', async () => {
    const { leader } = replicated()
    await leader.update((tx) => {
      for (let i = 1; i <= 3; i++) tx.create('tasks', task(`t${i}`, 's1', i))
    })
    const restored = new ClusterStore()
    restored.restore(leader.snapshot())
    const [a, b, c] = tasks(restored)
    expect(a!.spec).toBe(b!.spec)
    expect(c!.serviceAnnotations).toBe(a!.serviceAnnotations)
    expect(Object.isFrozen(a!.meta)).toBe(true)
    expect(Object.isFrozen(a!.spec.containerSpec)).toBe(true)
    expect(JSON.stringify(tasks(restored))).toBe(JSON.stringify(tasks(leader)))
  })

  it('keeps what a restore leaves unchanged as it was', async () => {
    const { leader, follower } = replicated()
    await leader.update((tx) => tx.create('tasks', task('t1', 's1', 1)))
    const before = follower.view((tx) => tx.get('tasks', 't1'))!
    await follower.restoreAsync(leader.snapshot())
    const after = follower.view((tx) => tx.get('tasks', 't1'))!
    expect(after.spec).toBe(before.spec)
    expect(after.networks).toBe(before.networks)
  })
})
