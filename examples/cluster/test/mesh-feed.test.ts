// The routing mesh streams of a dispatcher share one store watch (mesh-feed.ts): a node's stream still gets
// the list first and again whenever it changes, and nothing for the changes that leave it alone; the store is
// watched once for all the streams, not once per stream; and every stream ends when the store closes.
import { ClusterStore, type Task } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import { Dispatcher, ENDPOINT_LABEL } from '../src/index.js'
import type { PublishedPort } from '../src/kernel-ingress.js'
import { MeshFeed } from '../src/mesh-feed.js'
import { waitFor } from './helpers.js'

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const c of cleanups.splice(0)) c()
})

const port = {
  protocol: 'tcp' as const,
  targetPort: 80,
  publishedPort: 8080,
  publishMode: 'ingress' as const,
}

function setup() {
  const store = new ClusterStore()
  let watches = 0
  const watch = store.watch.bind(store)
  store.watch = ((options) => {
    watches++
    return watch(options)
  }) as typeof store.watch
  const dispatcher = new Dispatcher({ store })
  const stop = new AbortController()
  cleanups.push(() => {
    stop.abort()
    dispatcher.close()
  })
  /** Follows a node's mesh stream: every list it sent, and whether it ended. */
  const follow = (nodeId: string) => {
    const lists: PublishedPort[][] = []
    const state = { ended: false }
    void (async () => {
      for await (const list of dispatcher.mesh(nodeId, stop.signal)) lists.push(list as PublishedPort[])
      state.ended = true
    })()
    return { lists, state }
  }
  return { store, dispatcher, follow, watches: () => watches }
}

function task(id: string, serviceId: string, slot: number, running: boolean): Omit<Task, 'meta'> {
  return {
    id,
    spec: { containerSpec: { image: 'busybox' } },
    specVersion: { index: 1 },
    serviceId,
    slot,
    nodeId: 'n1',
    serviceAnnotations: { name: serviceId, labels: {} },
    status: { timestamp: 0, state: running ? 'running' : 'assigned', message: '' },
    desiredState: 'running',
    networks: [],
    ...(running ? { labels: { [ENDPOINT_LABEL]: `10.0.0.${slot}:30000` } } : {}),
  }
}

const service = (id: string) => ({
  id,
  spec: {
    name: id,
    labels: {},
    mode: { replicated: { replicas: 1 } },
    taskTemplate: { containerSpec: { image: 'busybox' } },
  },
  specVersion: { index: 1 },
})

describe('Dispatcher mesh streams', () => {
  it('send the list first, again when it changes, and nothing for changes that leave it alone', async () => {
    const h = setup()
    await h.store.update((tx) => {
      tx.create('services', service('quiet'))
      tx.create('services', service('web'))
    })
    const a = h.follow('n1')
    const b = h.follow('n2')
    await waitFor(() => a.lists.length === 1 && b.lists.length === 1, 'the first lists', 5000)
    expect(a.lists[0]).toEqual([])
    // A burst of task changes of a service that publishes nothing: the mesh stays empty, no message.
    for (let round = 0; round < 3; round++)
      await h.store.update((tx) => {
        for (let i = 0; i < 200; i++) {
          const id = `q${i}`
          const t = tx.get('tasks', id)
          if (t) tx.update('tasks', { ...t, status: { ...t.status, message: `round ${round}` } })
          else tx.create('tasks', task(id, 'quiet', i + 1, false))
        }
      })
    await h.store.update((tx) => {
      const web = tx.get('services', 'web')!
      tx.update('services', { ...web, endpoint: { spec: { mode: 'vip' }, ports: [port], virtualIPs: [] } })
    })
    await waitFor(() => a.lists.length === 2 && b.lists.length === 2, 'the port published', 5000)
    expect(a.lists[1]).toMatchObject([{ service: 'web', publishedPort: 8080, endpoints: [] }])
    await h.store.update((tx) => {
      tx.create('tasks', task('w1', 'web', 1, true))
    })
    await waitFor(() => a.lists.length === 3 && b.lists.length === 3, 'the running task', 5000)
    expect(a.lists[2]![0]!.endpoints).toEqual([{ address: '10.0.0.1', port: 30000, node: 'n1' }])
    expect(b.lists[2]).toEqual(a.lists[2])
  })

  it('lose no change that came while the last list was still unread', async () => {
    const h = setup()
    await h.store.update((tx) => {
      tx.create('services', service('web'))
    })
    const stop = new AbortController()
    cleanups.push(() => stop.abort())
    const it = h.dispatcher.mesh('n1', stop.signal)[Symbol.asyncIterator]()
    expect((await it.next()).value).toEqual([])
    await h.store.update((tx) => {
      const web = tx.get('services', 'web')!
      tx.update('services', { ...web, endpoint: { spec: { mode: 'vip' }, ports: [port], virtualIPs: [] } })
    })
    // The burst is over before the stream is asked for more.
    await new Promise((r) => setTimeout(r, 50))
    const next = await Promise.race([it.next(), new Promise((r) => setTimeout(() => r('nothing'), 3000))])
    expect(next).toMatchObject({ value: [{ service: 'web', publishedPort: 8080 }] })
  })

  it('watch the store once for all the streams, not once per stream', async () => {
    const h = setup()
    const before = h.watches()
    const streams = Array.from({ length: 50 }, (_, i) => h.follow(`n${i}`))
    await waitFor(() => streams.every((s) => s.lists.length === 1), 'every first list', 5000)
    await h.store.update((tx) => {
      tx.create('services', service('web'))
    })
    expect(h.watches() - before).toBe(1)
  })

  it('all end when the store closes (their agents resubscribe)', async () => {
    const h = setup()
    const streams = [h.follow('n1'), h.follow('n2')]
    await waitFor(() => streams.every((s) => s.lists.length === 1), 'the first lists', 5000)
    h.store.close()
    await waitFor(() => streams.every((s) => s.state.ended), 'the streams ended', 5000)
  })
})

describe('MeshFeed with the list key', () => {
  /** A feed over a fresh store whose list key a test sets, and a subscription that counts its wakes. */
  function feed() {
    const store = new ClusterStore()
    const stop = new AbortController()
    cleanups.push(() => stop.abort())
    const state = { key: 'empty' }
    const f = new MeshFeed(store, () => state.key)
    const follow = () => {
      const changes = f.subscribe(stop.signal)
      const seen = { wakes: 0 }
      void (async () => {
        while (await changes.next()) seen.wakes++
      })()
      return seen
    }
    let n = 0
    const touch = () =>
      store.update((tx) => {
        tx.create('tasks', task(`t${n}`, 'svc', ++n, false))
      })
    /** Lets a burst end (the feed closes it with setImmediate). */
    const settle = () => new Promise((r) => setTimeout(r, 20))
    return { state, follow, touch, settle }
  }

  it('wakes no stream for bursts that leave the list as the last wake left it', async () => {
    const h = feed()
    const streams = Array.from({ length: 20 }, () => h.follow())
    await h.touch() // the first burst wakes (nothing known yet)
    await h.settle()
    for (let i = 0; i < 10; i++) {
      await h.touch()
      await h.settle()
    }
    expect(streams.map((s) => s.wakes)).toEqual(streams.map(() => 1))
    h.state.key = 'one port'
    await h.touch()
    await waitFor(() => streams.every((s) => s.wakes === 2), 'woken by the change', 5000)
  })

  it('wakes a stream that subscribed during a burst even when the burst ends where the last one did', async () => {
    const h = feed()
    const first = h.follow()
    await h.touch()
    await h.settle()
    expect(first.wakes).toBe(1)
    // The list changes and changes back within one burst; a stream subscribed in between read the change.
    h.state.key = 'changed'
    await h.touch()
    const late = h.follow()
    h.state.key = 'empty'
    await h.touch()
    await waitFor(() => late.wakes === 1, 'the late stream woken', 5000)
  })

  it('wakes the streams after the store changed unwatched (no stream for a while)', async () => {
    const stop = new AbortController()
    const store = new ClusterStore()
    const state = { key: 'k0' }
    const f = new MeshFeed(store, () => state.key)
    const a = f.subscribe(stop.signal)
    await store.update((tx) => {
      tx.create('tasks', task('a', 'svc', 1, false))
    })
    expect(await a.next()).toBe(true) // key k0 noted
    a.close() // nobody watches now
    state.key = 'k1' // changed, unseen; a new stream reads k1
    const b = f.subscribe(stop.signal)
    state.key = 'k0' // and back
    await store.update((tx) => {
      tx.create('tasks', task('b', 'svc', 2, false))
    })
    const woke = await Promise.race([b.next(), new Promise((r) => setTimeout(() => r('not woken'), 2000))])
    expect(woke).toBe(true)
    stop.abort()
  })
})
