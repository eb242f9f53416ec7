// A leader's own stall is not its nodes' silence. A new leader rebuilds its duties (scheduler, orchestrator,
// dispatcher) and may block its event loop for longer than the heartbeat grace; the heartbeats that came in
// meanwhile wait in its sockets, and Node runs expired timers (the down check) before it reads them. Before,
// such a leader marked every node down on its first check after the stall, and the nodes' next heartbeats
// made them ready again: their tasks were moved for nothing. Swarm's dispatcher gives every node a fresh
// grace period when leadership changes; here the grace is also counted on a clock that stands still while
// the leader's loop is stalled (stall-clock.ts).
import { ClusterStore } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import { Dispatcher } from '../src/index.js'
import { stallClock } from '../src/stall-clock.js'
import { waitFor } from './helpers.js'
import { readyWorker } from './node-fixtures.js'

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const c of cleanups.splice(0)) c()
})

/** The IDs of the nodes marked down in `store`, in commit order, from now on. */
function markedDown(store: ClusterStore): string[] {
  const downs: string[] = []
  const watch = store.watch({
    table: 'nodes',
    filter: (e) => {
      if (e.object.status.state === 'down') downs.push(e.object.id)
      return false
    },
  })
  cleanups.push(() => watch.close())
  return downs
}

/** Blocks the event loop for `ms` (a leader's synchronous rebuild). */
function block(ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) {}
}

describe('a new leader that stalls', () => {
  it('does not mark down nodes whose heartbeats came during its stall, and still marks a silent node down', async () => {
    const periodMs = 100
    const store = new ClusterStore()
    const ids = Array.from({ length: 50 }, (_, i) => `n${i}`)
    await store.update((tx) => {
      for (const id of [...ids, 'silent']) tx.create('nodes', readyWorker(id))
    })
    // Every node marked down, as it commits.
    const downs = markedDown(store)
    const lines: string[] = []
    const dispatcher = new Dispatcher({ store, heartbeatPeriodMs: periodMs, log: (l) => lines.push(l) })
    cleanups.push(() => dispatcher.close())

    // The agents: every period each node's heartbeat arrives as I/O does, after the loop's timers.
    let rounds = 0
    const beat = () =>
      setImmediate(() => {
        rounds++
        for (const id of ids) void dispatcher.heartbeat(id)
      })
    const agents = setInterval(beat, periodMs)
    cleanups.push(() => clearInterval(agents))
    dispatcher.startTracking(1)
    await waitFor(() => rounds >= 3, 'three rounds of heartbeats', 20_000)

    // Leadership again (a new term), then a stall of five periods, longer than the 3-period grace: the
    // heartbeats sent meanwhile are read only after it.
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        dispatcher.startTracking(2)
        beat()
        block(5 * periodMs)
        resolve()
      }),
    )
    const after = rounds
    await waitFor(() => rounds >= after + 5, 'five more rounds of heartbeats', 20_000)
    await waitFor(
      () => downs.includes('silent'),
      'the silent node marked down',
      20_000,
      () => lines.join('\n'),
    )
    expect(downs.filter((id) => id !== 'silent')).toEqual([])
    expect(
      store.view((tx) =>
        tx
          .find('nodes')
          .filter((n) => n.status.state !== 'ready')
          .map((n) => n.id),
      ),
    ).toEqual(['silent'])
  })
})

describe('a leader marking nodes down', () => {
  it('leaves ready a node whose heartbeat came while the marking waited for the store', async () => {
    // A store whose commits can be held (a raft proposal in flight), so the marking queues behind one.
    let index = 0
    let gate: Promise<void> = Promise.resolve()
    const store: ClusterStore = new ClusterStore({
      proposer: async (cmd) => {
        await gate
        store.apply(cmd, ++index)
      },
    })
    await store.update((tx) => {
      tx.create('nodes', readyWorker('late'))
      tx.create('nodes', readyWorker('other'))
    })
    const downs = markedDown(store)
    let asked = 0
    let downsAtFirstMarking: string[] | undefined
    const dispatcher = new Dispatcher({
      store,
      heartbeatPeriodMs: 50,
      // Asked about each node found silent, just before the marking.
      raftHears: (id) => {
        if (id === 'late') asked++
        return false
      },
      log: (line) => {
        if (line.startsWith('nodes down')) downsAtFirstMarking ??= [...downs]
      },
    })
    cleanups.push(() => dispatcher.close())
    let release = () => {}
    gate = new Promise<void>((r) => {
      release = r
    })
    const held = store.update((tx) => {
      const n = tx.get('nodes', 'other')!
      tx.update('nodes', { ...n, spec: { ...n.spec, labels: { held: 'yes' } } })
    })
    dispatcher.startTracking()
    await waitFor(() => asked > 0, "the check finds 'late' silent", 20_000)
    await dispatcher.heartbeat('late')
    release()
    await held
    await waitFor(() => downsAtFirstMarking, 'the marking done', 20_000)
    // 'other' stayed silent: marked down with it.
    expect(downsAtFirstMarking).toEqual(['other'])
  })
})

describe('stallClock', () => {
  it('stands still while the loop is stalled, and runs with the wall clock otherwise', () => {
    let wall = 1_000
    const clock = stallClock({ now: () => wall, tickMs: 100, thresholdMs: 250, timer: false })
    cleanups.push(() => clock.close())
    const t0 = clock.now()
    wall += 100
    expect(clock.now() - t0).toBe(100)
    wall += 200 // late, but not a stall
    expect(clock.now() - t0).toBe(300)
    wall += 5_000 // a stall: only one tick of it counts
    expect(clock.now() - t0).toBe(400)
    expect(clock.stalledMs).toBe(4_900)
    wall += 50
    expect(clock.now() - t0).toBe(450)
  })

  it('sees a real stall of the event loop', async () => {
    const clock = stallClock({ tickMs: 20, thresholdMs: 100 })
    cleanups.push(() => clock.close())
    await new Promise((r) => setTimeout(r, 50))
    const t0 = clock.now()
    block(600)
    const elapsed = clock.now() - t0
    expect(elapsed).toBeLessThan(100)
    expect(clock.stalledMs).toBeGreaterThanOrEqual(500)
  })
})
