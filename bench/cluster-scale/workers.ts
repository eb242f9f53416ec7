// The worker host role of bench/cluster-scale: a child process that joins many simulated workers (each with
// its own key, certificate, source address and mutual TLS session) and tells its parent, over the IPC
// channel, what its tasks do: when each task first reached its node, when it ran, and which are running.

import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import type { Assignment, TaskStatusUpdate } from '../../examples/cluster/src/dispatcher.js'
import { type SimulatedWorker, startSimulatedWorker } from '../../examples/cluster/src/simulated-worker.js'

export interface StartWorkers {
  op: 'start'
  host: number
  count: number
  joinAddrs: string[]
  token: string
  concurrency: number
}

export interface TaskView {
  slot: number
  gen: string
  seen: number
  running: number
  state: string
}

/** The simulated workers follow the routing mesh as daemons do; SCALE_MESH=0 leaves it out (to see its cost). */
const MESH = process.env['SCALE_MESH'] !== '0'
/** The agents' heartbeat timer grain (default 50 ms: a host's heartbeats due in one grain leave together). */
const GRAIN_MS = process.env['SCALE_HEARTBEAT_GRAIN_MS']
  ? Number(process.env['SCALE_HEARTBEAT_GRAIN_MS'])
  : undefined

/** The generation marker of a task (the bench's `GEN=` environment variable). */
const genOf = (a: Assignment) =>
  (a.spec?.containerSpec?.env ?? []).find((e) => e.startsWith('GEN='))?.slice(4) ?? '?'

export async function workerHost(): Promise<void> {
  const profile = process.env['SCALE_PROFILE']
  const session = profile ? new Session() : undefined
  if (session) {
    session.connect()
    session.post('Profiler.enable', () => session.post('Profiler.start'))
  }
  const tasks = new Map<string, TaskView>()
  const runningByGen = new Map<string, number>()
  /** What the agents logged, by kind (the first words), to explain slow phases. */
  const logged = new Map<string, number>()
  const log = (line: string) => {
    const kind = line
      .replace(/^sim-\S+: /, '')
      .replace(/[0-9a-z]{25}/g, 'ID')
      .slice(0, 60)
    logged.set(kind, (logged.get(kind) ?? 0) + 1)
  }
  const workers: SimulatedWorker[] = []
  const send = (m: unknown) => process.send!(m)
  const onAssignments = (list: readonly Assignment[]) => {
    const now = Date.now()
    for (const a of list) {
      if (a.desiredState !== 'running' || tasks.has(a.taskId)) continue
      const gen = genOf(a)
      tasks.set(a.taskId, { slot: a.slot, gen, seen: now, running: 0, state: a.state })
      if (a.state === 'running') runningByGen.set(gen, (runningByGen.get(gen) ?? 0) + 1)
    }
  }
  const onReport = (u: TaskStatusUpdate) => {
    const t = tasks.get(u.taskId)
    if (!t) return
    // Running tasks per generation, kept as reports come (the bench polls it; a walk over every task seen
    // cost the worker host 15 s of CPU in a 1,000 / 50,000 run).
    if ((t.state === 'running') !== (u.state === 'running'))
      runningByGen.set(t.gen, (runningByGen.get(t.gen) ?? 0) + (u.state === 'running' ? 1 : -1))
    t.state = u.state
    if (u.state === 'running' && !t.running) t.running = Date.now()
  }
  process.on('message', async (m: any) => {
    if (m.op === 'start') {
      const s = m as StartWorkers
      const started = Date.now()
      const joinMs: number[] = []
      let nextIndex = 0
      let failed = 0
      const one = async () => {
        for (;;) {
          const i = nextIndex++
          if (i >= s.count) return
          const addr = `127.${64 + s.host}.${Math.floor(i / 250)}.${(i % 250) + 1}`
          const t0 = Date.now()
          for (let attempt = 1; ; attempt++) {
            try {
              workers.push(
                await startSimulatedWorker({
                  joinAddr: s.joinAddrs[i % s.joinAddrs.length]!,
                  token: s.token,
                  hostname: `sim-${s.host}-${i}`,
                  addr,
                  onAssignments,
                  onReport,
                  routingMesh: MESH,
                  ...(GRAIN_MS ? { heartbeatGrainMs: GRAIN_MS } : {}),
                  log,
                }),
              )
              break
            } catch (err) {
              if (attempt >= 5) {
                failed++
                console.error(`sim-${s.host}-${i}: ${(err as Error).message}`)
                break
              }
              await new Promise((r) => setTimeout(r, 500 * attempt))
            }
          }
          joinMs.push(Date.now() - t0)
        }
      }
      await Promise.all(Array.from({ length: s.concurrency }, one))
      send({ op: 'joined', joined: workers.length, failed, ms: Date.now() - started, joinMs })
    } else if (m.op === 'count') {
      const running: Record<string, number> = {}
      for (const [gen, n] of runningByGen) if (n > 0) running[gen] = n
      // Messages so far (cumulative), with what the agents logged: status report calls, assignment messages.
      let statusCalls = 0
      let assignmentMessages = 0
      for (const w of workers) {
        statusCalls += w.counts.statusCalls
        assignmentMessages += w.counts.assignmentMessages
      }
      const counted = { '(status report calls)': statusCalls, '(assignment messages)': assignmentMessages }
      send({ op: 'count', id: m.id, running, logged: { ...Object.fromEntries(logged), ...counted } })
    } else if (m.op === 'detail') {
      // Delays of generation `gen` from `since`, and the slots of its running tasks.
      const seen: number[] = []
      const ran: number[] = []
      const slots: number[] = []
      for (const t of tasks.values()) {
        if (t.gen !== m.gen) continue
        seen.push(t.seen - m.since)
        if (t.running) ran.push(t.running - m.since)
        if (t.state === 'running') slots.push(t.slot)
      }
      send({ op: 'detail', id: m.id, seen, ran, slots })
    } else if (m.op === 'profile' && session) {
      session.post('Profiler.stop', (err, r: { profile: unknown }) => {
        if (!err) writeFileSync(`${profile}/workers-${process.pid}.cpuprofile`, JSON.stringify(r.profile))
        send({ op: 'profile', id: m.id })
      })
    } else if (m.op === 'stop') {
      await Promise.all(workers.map((w) => w.stop().catch(() => {})))
      send({ op: 'stopped' })
      process.exit(0)
    }
  })
  send({ op: 'ready' })
}
