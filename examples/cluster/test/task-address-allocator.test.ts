// The incremental task-address allocator (task-address-loop.ts) against the whole-store reference
// (allocateTaskAddresses / allocateIngressAddresses / heldAddresses), in a seeded simulation over a real
// replicated ClusterStore: random networks, services with VIPs, tasks created, finished and removed, nodes,
// duplicates an older allocator left, failed commits (not committed, and fenced), leader changes and dropped
// watches. After every step no address may have two live holders; once the allocator has settled, every
// live task's attachment on an addressed network has one address, a full pass would change nothing, and the
// allocator's book holds exactly what the store holds. A failing seed is printed; rerun it with
// ALLOC_SIM_SEED=<seed>.
import {
  ClusterStore,
  generateId,
  type NewObject,
  type Node,
  type Proposer,
  type Service,
  type ServiceSpec,
  TABLES,
  type TaskState,
} from '@swarmkit/store'
import { Packr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { mulberry32 } from '../../../test/support/mulberry32.js'
import { addressKey } from '../src/address-book.js'
import { allocateEndpoint, createNetwork } from '../src/allocator.js'
import { allocateIngressAddresses } from '../src/ingress-attachments.js'
import { publishes } from '../src/task-address-index.js'
import { allocatorTasks, TaskAddressLoop } from '../src/task-address-loop.js'
import { allocateTaskAddresses, heldAddresses, holdsAddresses } from '../src/task-addresses.js'
import { countingTasks, sharedAddresses, taskOf } from './store-fixtures.js'

/** The store snapshot's encoding (format 1: msgpack of [kind, format, version, tables, proposers]). */
const snapshotCodec = new Packr({
  useRecords: false,
  moreTypes: false,
  mapsAsObjects: true,
  int64AsType: 'number',
})

const raftError = (code: string) => Object.assign(new Error(`raft: ${code}`), { name: 'RaftError', code })

/** A store whose commands go through a proposer that can be told to fail the next few proposals. */
function replicatedStore() {
  let index = 0
  const faults = { next: 0, kind: 'dropped' as 'dropped' | 'open' }
  let store: ClusterStore | undefined
  let slow = false
  const proposer: Proposer = async (cmd) => {
    // Every other command waits a turn of the event loop (the allocator's transactions then queue behind
    // other writers' on the store's write lock).
    slow = !slow
    if (slow) await new Promise((r) => setImmediate(r))
    else await Promise.resolve()
    if (faults.next > 0) {
      faults.next--
      // `dropped`: certainly not in the log; `open`: the outcome is open, and the store fences it off.
      throw faults.kind === 'dropped' ? raftError('NO_LEADER') : raftError('STOPPED')
    }
    store!.apply(cmd, ++index)
    return { index }
  }
  store = new ClusterStore({ proposer })
  return { store, faults }
}

const until = async (what: string, cond: () => boolean, ms = 20_000): Promise<void> => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 1))
  }
}

/** Whether the whole-store reference would change anything now. */
async function fullPassWouldChange(store: ClusterStore): Promise<boolean> {
  let wrote = false
  const probe = {
    view: store.view.bind(store),
    update: async () => {
      wrote = true
      return undefined as never
    },
  }
  await allocateTaskAddresses(probe)
  await allocateIngressAddresses(probe)
  return wrote
}

interface World {
  store: ClusterStore
  faults: { next: number; kind: 'dropped' | 'open' }
  /** Addresses planted on two holders (an older allocator's duplicates): allowed to stay shared by two. */
  planted: Set<string>
}

async function write(store: ClusterStore, fn: Parameters<ClusterStore['update']>[0]): Promise<void> {
  try {
    await store.update(fn)
  } catch {
    // A failed commit (an injected fault, or a removal refused while in use) changes nothing.
  }
}

function serviceSpec(name: string, networks: string[], publish: boolean): ServiceSpec {
  return {
    name,
    labels: {},
    taskTemplate: { containerSpec: { image: 'busybox' }, networks: networks.map((target) => ({ target })) },
    mode: { replicated: { replicas: 1 } },
    endpointSpec: {
      mode: 'vip',
      ...(publish
        ? {
            ports: [
              { protocol: 'tcp' as const, targetPort: 80, publishedPort: 0, publishMode: 'ingress' as const },
            ],
          }
        : {}),
    },
  }
}

function nodeOf(i: number): NewObject<Node> {
  return {
    id: `node-${i}-${generateId().slice(0, 6)}`,
    spec: { labels: {}, role: 'worker', availability: 'active' },
    role: 'worker',
    status: { state: 'ready', addr: `127.0.0.${(i % 200) + 1}` },
  }
}

const FINISHED: TaskState[] = ['complete', 'failed', 'shutdown', 'rejected', 'orphaned']

/** One random step of the other writers (API, orchestrator, dispatcher). */
async function step(w: World, rnd: () => number, log: string[]): Promise<void> {
  const { store } = w
  const pick = <T>(list: readonly T[]): T | undefined => list[Math.floor(rnd() * list.length)]
  const r = rnd()
  const view = store.view((tx) => ({
    networks: tx.find('networks').filter((n) => !n.spec.ingress),
    services: tx.find('services'),
    tasks: tx.find('tasks'),
    live: tx.find('tasks', undefined, holdsAddresses),
  }))
  if (r < 0.06 && view.networks.length < 4) {
    log.push('network create')
    await write(store, (tx) => {
      createNetwork(tx, {
        name: `net${generateId().slice(0, 6)}`,
        labels: {},
        driverConfig: { name: 'overlay' },
      })
    })
  } else if (r < 0.09) {
    const n = pick(view.networks)
    log.push(`network remove ${n?.id}`)
    if (n) await write(store, (tx) => tx.delete('networks', n.id))
  } else if (r < 0.17 && view.services.length < 6) {
    const nets = view.networks.filter(() => rnd() < 0.6).map((n) => n.id)
    const publish = rnd() < 0.4
    log.push(`service create nets=${nets.length} publish=${publish}`)
    await write(store, (tx) => {
      const id = generateId()
      const spec = serviceSpec(`svc${id.slice(0, 6)}`, nets, publish)
      tx.create('services', { id, spec, specVersion: { index: 0 }, endpoint: allocateEndpoint(tx, id, spec) })
    })
  } else if (r < 0.22) {
    const s = pick(view.services)
    if (!s) return
    const nets = view.networks.filter(() => rnd() < 0.6).map((n) => n.id)
    log.push(`service update ${s.id} nets=${nets.length}`)
    await write(store, (tx) => {
      const cur = tx.get('services', s.id)
      if (!cur) return
      const spec = serviceSpec(cur.spec.name, nets, (cur.spec.endpointSpec?.ports ?? []).length > 0)
      tx.update('services', { ...cur, spec, endpoint: allocateEndpoint(tx, cur.id, spec) })
    })
  } else if (r < 0.25) {
    const s = pick(view.services)
    log.push(`service remove ${s?.id}`)
    if (s) await write(store, (tx) => tx.delete('services', s.id))
  } else if (r < 0.45 && view.live.length < 120) {
    const s = pick(view.services)
    if (!s) return
    const n = 1 + Math.floor(rnd() * (rnd() < 0.2 ? 60 : 8))
    log.push(`tasks create ${n} of ${s.id}`)
    await write(store, (tx) => {
      const cur = tx.get('services', s.id)
      if (!cur) return
      for (let i = 0; i < n; i++) tx.create('tasks', taskOf(cur, i + 1, rnd() < 0.5 ? 'pending' : 'running'))
    })
    // Often the allocator's own commits for them fail.
    if (rnd() < 0.4) {
      w.faults.next = 1 + Math.floor(rnd() * 3)
      w.faults.kind = rnd() < 0.5 ? 'dropped' : 'open'
    }
  } else if (r < 0.6) {
    const chosen = view.live.filter(() => rnd() < 0.3)
    log.push(`tasks finish ${chosen.length}`)
    await write(store, (tx) => {
      for (const t of chosen) {
        const cur = tx.get('tasks', t.id)
        if (cur && holdsAddresses(cur))
          tx.update('tasks', { ...cur, status: { ...cur.status, state: pick(FINISHED)! } })
      }
    })
  } else if (r < 0.7) {
    const chosen = view.tasks.filter(() => rnd() < 0.25)
    log.push(`tasks remove ${chosen.length}`)
    await write(store, (tx) => {
      for (const t of chosen) if (tx.get('tasks', t.id)) tx.delete('tasks', t.id)
    })
  } else if (r < 0.75) {
    log.push('tasks progress')
    await write(store, (tx) => {
      for (const t of view.live.filter(() => rnd() < 0.3)) {
        const cur = tx.get('tasks', t.id)
        if (cur?.status.state === 'pending')
          tx.update('tasks', { ...cur, status: { ...cur.status, state: 'running' } })
      }
    })
  } else if (r < 0.8 && store.view((tx) => tx.find('nodes').length) < 12) {
    log.push('node create')
    await write(store, (tx) => tx.create('nodes', nodeOf(Math.floor(rnd() * 1000))))
  } else if (r < 0.83) {
    // An older allocator's duplicate: a new live task with the address another live task holds. The store
    // refuses such a write now (address-claims.ts), so it comes as an older store would hand it over: in a
    // snapshot a member installs.
    const from = pick(
      view.live.filter(
        (t) =>
          t.networks.some((a) => a.addresses.length > 0) &&
          t.networks.every((a) => a.addresses.every((x) => !w.planted.has(addressKey(a.networkId, x)))),
      ),
    )
    const s = from && view.services.find((x) => x.id === from.serviceId)
    if (!from || !s) return
    log.push(`duplicate of ${from.id}`)
    const t = taskOf(s, 99, 'running')
    const networks = t.networks.map((a) => ({
      ...a,
      addresses: from.networks.find((b) => b.networkId === a.networkId)?.addresses ?? [],
    }))
    const snap = snapshotCodec.unpack(store.snapshot()) as [string, number, number, object[][], unknown]
    snap[3][TABLES.indexOf('tasks')]!.push({ ...t, networks, meta: from.meta, specVersion: from.specVersion })
    store.restore(snapshotCodec.pack(snap))
    for (const a of networks) for (const x of a.addresses) w.planted.add(addressKey(a.networkId, x))
  } else if (r < 0.88) {
    w.faults.next = 1 + Math.floor(rnd() * 3)
    w.faults.kind = rnd() < 0.5 ? 'dropped' : 'open'
    log.push(`faults ${w.faults.next} ${w.faults.kind}`)
  }
}

function checkNoSharing(w: World, log: string[]): void {
  const shared = w.store.view(sharedAddresses)
  for (const [k, holders] of shared) {
    if (!w.planted.has(k) || holders.length > 2)
      throw new Error(`address ${k} held by ${holders.join(', ')} after: ${log.slice(-8).join('; ')}`)
  }
}

/** A rebuild reads every task the index needs: each live task on a network or publishing a port. */
function checkRebuildReads(w: World, log: string[]): void {
  w.store.view((tx) => {
    const read = new Set(allocatorTasks(tx, tx.find('networks'), tx.find('services')).map((t) => t.id))
    for (const t of tx.find('tasks'))
      if (holdsAddresses(t) && (t.networks.length > 0 || publishes(t)) && !read.has(t.id))
        throw new Error(`a rebuild leaves out task ${t.id} after: ${log.slice(-8).join('; ')}`)
  })
}

async function checkSettled(w: World, loop: TaskAddressLoop, log: string[]): Promise<void> {
  await until(`the allocator to settle after: ${log.slice(-5).join('; ')}`, () => loop.settled()).catch(
    (err) => {
      const i = loop.index
      throw new Error(
        `${err.message} (stats ${JSON.stringify(loop.stats)}, tasks ${i?.tasks.size}, nodes ${i?.nodes.size}, onIngress ${i?.onIngress.size})`,
      )
    },
  )
  const { store } = w
  // Every live task attachment on an addressed network has exactly one address.
  store.view((tx) => {
    const addressed = new Set(
      tx
        .find('networks')
        .filter((n) => !n.spec.ingress && !n.pendingDelete && n.ipam?.configs[0]?.subnet)
        .map((n) => n.id),
    )
    for (const t of tx.find('tasks', undefined, holdsAddresses))
      for (const a of t.networks)
        if (addressed.has(a.networkId) && a.addresses.length !== 1)
          throw new Error(`task ${t.id} has ${a.addresses.length} addresses on ${a.networkId}`)
  })
  expect(await fullPassWouldChange(store), `a full pass would change something after ${log.slice(-5)}`).toBe(
    false,
  )
  // The allocator's book holds exactly what the store holds (nothing leaked, nothing missed).
  const held = new Set(store.view((tx) => heldAddresses(tx).map((a) => addressKey(a.network, a.address))))
  const book = new Set(loop.index!.book.keys())
  expect(
    [...book].filter((k) => !held.has(k)),
    'held in memory only',
  ).toEqual([])
  expect(
    [...held].filter((k) => !book.has(k)),
    'held in the store only',
  ).toEqual([])
}

async function simulate(seed: number, steps: number): Promise<void> {
  const rnd = mulberry32(seed)
  const { store, faults } = replicatedStore()
  const w: World = { store, faults, planted: new Set() }
  const log: string[] = []
  await store.update((tx) => {
    createNetwork(tx, { name: 'ingress', labels: {}, driverConfig: { name: 'overlay' }, ingress: true })
    createNetwork(tx, { name: 'net0', labels: {}, driverConfig: { name: 'overlay' } })
    for (let i = 0; i < 3; i++) tx.create('nodes', nodeOf(i))
  })
  const newLoop = () =>
    new TaskAddressLoop({
      store,
      log: (line) => log.push(`allocator: ${line}`),
      retryMs: 2,
      batchSize: 1 + Math.floor(rnd() * 40),
      // Now and then a watch that is dropped by any larger commit.
      queueSize: rnd() < 0.25 ? 10 : 1_000_000,
    })
  let loop = newLoop()
  loop.start()
  try {
    for (let i = 0; i < steps; i++) {
      const r = rnd()
      if (r < 0.05) {
        log.push('leader change')
        await loop.stop()
        // Another leader's allocator, or none for a while.
        if (rnd() < 0.5) await step(w, rnd, log)
        loop = newLoop()
        loop.start()
      } else if (r < 0.3) {
        // Two writers at once.
        await Promise.all([step(w, rnd, log), step(w, rnd, log)])
      } else await step(w, rnd, log)
      checkNoSharing(w, log)
      checkRebuildReads(w, log)
      const settle = rnd() < 0.5
      const pause = rnd() < 0.5
      if (settle) {
        // Let the faults run out first: an allocator that cannot commit does not settle.
        if (faults.next > 0) await until('the faults to be used', () => faults.next === 0 || loop.settled())
        faults.next = 0
        await checkSettled(w, loop, log)
      } else if (pause) await new Promise((r) => setImmediate(r))
    }
    faults.next = 0
    await checkSettled(w, loop, log)
    checkNoSharing(w, log)
    if (process.env.ALLOC_SIM_VERBOSE) {
      const count = (re: RegExp) => log.filter((l) => re.test(l)).length
      console.log(
        `seed ${seed}: leader changes ${count(/^leader change/)}, rebuilds ${count(/rebuilding/)}, dropped watches ${count(/dropped/)}, failed commits ${count(/not allocated/)}, duplicates ${count(/^duplicate/)}, networks created ${count(/^network create/)} removed ${count(/^network remove/)}`,
      )
    }
  } catch (err) {
    throw new Error(`seed ${seed}: ${(err as Error).message}`, { cause: err })
  } finally {
    await loop.stop()
  }
}

describe('the incremental task-address allocator', () => {
  it('leaves tasks waiting when a network is full, and addresses them once others finish', async () => {
    const { store } = replicatedStore()
    // A /29: six host addresses, one the gateway, so five for tasks.
    await store.update((tx) =>
      tx.create('networks', {
        id: 'small',
        spec: { name: 'small', labels: {}, driverConfig: { name: 'overlay' } },
        vni: 5000,
        ipam: {
          driver: { name: 'default' },
          configs: [{ family: 'ipv4', subnet: '10.9.0.0/29', gateway: '10.9.0.1' }],
        },
      }),
    )
    const s = { id: 'svc', spec: serviceSpec('small', ['small'], false) } as Service
    await store.update((tx) => {
      for (let i = 0; i < 8; i++) tx.create('tasks', { ...taskOf(s, i + 1, 'running'), id: `t${i}` })
    })
    const loop = new TaskAddressLoop({ store })
    loop.start()
    const addressed = () =>
      store.view((tx) =>
        tx.find('tasks', undefined, (t) => t.networks[0]!.addresses.length > 0 && holdsAddresses(t)),
      )
    try {
      await until('five tasks addressed', () => loop.settled() && addressed().length === 5)
      const passes = loop.stats.passes
      // Nothing was released: no pass runs for the waiting tasks, however many events come.
      for (let i = 0; i < 20; i++)
        await store.update((tx) => {
          const t = tx.get('tasks', 't0')!
          tx.update('tasks', { ...t, status: { ...t.status, message: `tick ${i}` } })
        })
      await until('the allocator to settle', () => loop.settled())
      expect(loop.stats.passes).toBe(passes)
      const done = addressed().slice(0, 2)
      await store.update((tx) => {
        for (const t of done)
          tx.update('tasks', { ...tx.get('tasks', t.id)!, status: { ...t.status, state: 'complete' } })
      })
      await until('the waiting tasks addressed', () => loop.settled() && addressed().length === 5)
      expect([...store.view(sharedAddresses).keys()]).toEqual([])
      expect(
        store.view((tx) => tx.find('tasks', undefined, (t) => t.networks[0]!.addresses.length === 0)),
      ).toHaveLength(1)
    } finally {
      await loop.stop()
    }
  })

  it('does not give a task the VIP another writer committed while its transaction waited', async () => {
    const { store } = replicatedStore()
    let net = ''
    await store.update((tx) => {
      net = createNetwork(tx, { name: 'net0', labels: {}, driverConfig: { name: 'overlay' } })
    })
    const svc = (name: string) => {
      const id = generateId()
      return { id, spec: serviceSpec(name, [net], false) }
    }
    const a = svc('a')
    await store.update((tx) =>
      tx.create('services', {
        ...a,
        specVersion: { index: 0 },
        endpoint: allocateEndpoint(tx, a.id, a.spec),
      }),
    )
    const loop = new TaskAddressLoop({ store })
    loop.start()
    try {
      await until('the allocator to start', () => loop.settled())
      for (let round = 0; round < 20; round++) {
        // Tasks the allocator will address, and at once another writer's VIP on the same network: the
        // allocator's transaction queues behind it on the write lock.
        const b = svc(`b${round}`)
        const created = store.update((tx) => {
          const cur = tx.get('services', a.id)!
          for (let i = 0; i < 3; i++) tx.create('tasks', taskOf(cur, i + 1, 'running'))
        })
        const vip = store.update((tx) =>
          tx.create('services', {
            ...b,
            specVersion: { index: 0 },
            endpoint: allocateEndpoint(tx, b.id, b.spec),
          }),
        )
        await Promise.all([created, vip])
        await until('the allocator to settle', () => loop.settled())
        expect([...store.view(sharedAddresses).keys()]).toEqual([])
      }
    } finally {
      await loop.stop()
    }
  })

  it('rebuilds from the tasks on networks and of publishing services, not from every task', async () => {
    const { store } = replicatedStore()
    const pub = { id: 'pub', spec: serviceSpec('pub', [], true) }
    const onNet = { id: 'onnet', spec: serviceSpec('onnet', ['net0'], false) }
    const plain = { id: 'plain', spec: serviceSpec('plain', [], false) }
    await store.update((tx) => {
      createNetwork(tx, { name: 'ingress', labels: {}, driverConfig: { name: 'overlay' }, ingress: true })
      tx.create('networks', {
        ...tx.find('networks')[0]!,
        id: 'net0',
        spec: { name: 'net0', labels: {}, driverConfig: { name: 'overlay' } },
        vni: 4242,
        ipam: {
          driver: { name: 'default' },
          configs: [{ family: 'ipv4', subnet: '10.7.0.0/24', gateway: '10.7.0.1' }],
        },
      } as never)
      for (const svc of [pub, onNet, plain])
        tx.create('services', {
          ...svc,
          specVersion: { index: 0 },
          endpoint: allocateEndpoint(tx, svc.id, svc.spec),
        })
    })
    const endpoint = store.view((tx) => tx.get('services', 'pub')!.endpoint)
    await store.update((tx) => {
      // A publishing task not yet on ingress: no network of its own, found through its service.
      tx.create('tasks', { ...taskOf(pub, 1, 'pending'), id: 'pub1', ...(endpoint ? { endpoint } : {}) })
      tx.create('tasks', { ...taskOf(onNet, 1, 'pending'), id: 'net1' })
      for (let i = 0; i < 300; i++)
        tx.create('tasks', { ...taskOf(plain, i + 1, 'running'), id: `plain${i}` })
    })
    const { read, seen } = store.view((view) => {
      const { tx, tasksSeen } = countingTasks(view)
      const read = allocatorTasks(tx, tx.find('networks'), tx.find('services')).map((t) => t.id)
      return { read, seen: tasksSeen() }
    })
    expect(read.sort()).toEqual(['net1', 'pub1'])
    expect(seen).toBeLessThan(10)
  })

  const fixed = process.env.ALLOC_SIM_SEED
  const seeds = fixed ? [Number(fixed)] : [1, 2, 3, 4, 5, 6]
  for (const seed of seeds)
    it(`keeps the invariants of a full pass in a random history (seed ${seed})`, {
      timeout: 120_000,
    }, async () => {
      await simulate(seed, 250)
    })
})
