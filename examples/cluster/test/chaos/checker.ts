// The checker of the chaos suite: once the faults are healed, every manager must hold every acknowledged
// write (same IDs), all managers must converge on the same state, no config may exist twice or without having
// been asked for, each service must end at a replica count some write asked for last, and its tasks must be
// exactly one running task per slot (none duplicated, none lost).
import type { Load, Op } from './load.js'
import { type ChaosCluster, type ManagerProcess, until } from './managers.js'

export interface CheckReport {
  acknowledgedCreates: number
  unknownCreates: number
  configs: number
  acknowledgedUpdates: number
  managers: number
  tasks: number
}

interface Snapshot {
  configs: { id: string; name: string }[]
  services: { id: string; name: string; version: number; replicas: number }[]
  tasks: any[]
}

async function read(m: ManagerProcess): Promise<Snapshot> {
  const get = async (path: string) => {
    const r = await m.request('GET', path, undefined, 30_000)
    if (r.status !== 200 || !Array.isArray(r.json))
      throw new Error(`${m.name} GET ${path}: ${r.status} ${r.text}`)
    return r.json
  }
  const [configs, services, tasks] = [await get('/configs'), await get('/services'), await get('/tasks')]
  return {
    configs: configs.map((c: any) => ({ id: c.ID, name: c.Spec.Name })),
    services: services.map((s: any) => ({
      id: s.ID,
      name: s.Spec.Name,
      version: s.Version.Index,
      replicas: s.Spec.Mode?.Replicated?.Replicas ?? -1,
    })),
    tasks,
  }
}

const fingerprint = (s: Snapshot) =>
  JSON.stringify([
    s.configs.map((c) => `${c.id}:${c.name}`).sort(),
    s.services.map((x) => `${x.id}:${x.version}:${x.replicas}`).sort(),
  ])

/** The replica counts a service may end at: the last acknowledged update's, or an unanswered later one's. */
function allowedReplicas(ops: Op[], initial: number): Set<number> {
  const acked = ops.filter((o) => o.outcome === 'ok').sort((a, b) => a.end - b.end)
  const last = acked.at(-1)
  const allowed = new Set<number>([last ? last.replicas! : initial])
  for (const o of ops) if (o.outcome === 'unknown' && (!last || o.end > last.start)) allowed.add(o.replicas!)
  return allowed
}

/** Waits for convergence (up to `timeoutMs`), then checks the history against every running manager. */
export async function check(cluster: ChaosCluster, load: Load, timeoutMs = 120_000): Promise<CheckReport> {
  const managers = cluster.managers.filter((m) => m.running)
  for (const m of managers) if (m.paused) throw new Error(`${m.name} is still paused`)
  let snaps: Snapshot[] = []
  await until(
    'every manager to hold the same configs and services',
    async () => {
      snaps = await Promise.all(managers.map(read))
      return snaps.every((s) => fingerprint(s) === fingerprint(snaps[0]!))
    },
    timeoutMs,
    () =>
      snaps
        .map(
          (s, i) =>
            `${managers[i]!.name}: ${s.configs.length} configs, services ${JSON.stringify(s.services)}`,
        )
        .join('\n'),
  )
  const sent = new Map<string, Op>()
  for (const op of load.history) if (op.kind === 'create') sent.set(op.key, op)
  const acked = load.history.filter((o) => o.kind === 'create' && o.outcome === 'ok')
  const problems: string[] = []
  for (const [i, s] of snaps.entries()) {
    const name = managers[i]!.name
    const byName = new Map<string, string[]>()
    for (const c of s.configs) byName.set(c.name, [...(byName.get(c.name) ?? []), c.id])
    for (const op of acked) {
      const ids = byName.get(op.key)
      if (!ids) problems.push(`${name}: acknowledged config ${op.key} (${op.id}, via ${op.via}) is lost`)
      else if (ids[0] !== op.id)
        problems.push(`${name}: config ${op.key} is ${ids[0]}, acknowledged as ${op.id}`)
    }
    for (const [key, ids] of byName) {
      if (ids.length > 1) problems.push(`${name}: config ${key} exists ${ids.length} times`)
      if (!sent.has(key)) problems.push(`${name}: config ${key} was never asked for`)
    }
  }
  const updates = load.history.filter((o) => o.kind === 'update')
  const services = snaps[0]!.services
  for (const svc of services) {
    const ops = updates.filter((o) => o.key === svc.name)
    const allowed = allowedReplicas(ops, 1)
    if (!allowed.has(svc.replicas))
      problems.push(
        `${svc.name} has ${svc.replicas} replicas; the history allows ${[...allowed].join(' or ')}`,
      )
  }
  if (problems.length > 0) throw new Error(`the history does not hold:\n${problems.slice(0, 40).join('\n')}`)

  // Tasks: the orchestrator settles after the last update; wait for one running task per slot on the leader.
  let taskProblems: string[] = []
  let tasks = 0
  await until(
    'one running task per slot of every service, on every manager',
    async () => {
      taskProblems = []
      tasks = 0
      for (const m of managers) {
        const s = await read(m)
        for (const svc of s.services) {
          const live = s.tasks.filter((t) => t.ServiceID === svc.id && t.DesiredState === 'running')
          const slots = new Map<number, number>()
          for (const t of live) slots.set(t.Slot, (slots.get(t.Slot) ?? 0) + 1)
          const dup = [...slots].filter(([, n]) => n > 1).map(([slot]) => slot)
          const dupText =
            dup.length > 0 &&
            `${m.name}: ${svc.name} slots ${dup.join(',')} have several tasks: ${live
              .filter((t) => dup.includes(t.Slot))
              .map(
                (t) =>
                  `${t.ID} slot ${t.Slot} on ${t.NodeID} ${t.Status?.State} v${t.Version?.Index} spec v${t.SpecVersion?.Index} created ${t.CreatedAt}`,
              )
              .join('; ')}`
          if (dupText) taskProblems.push(dupText)
          // Slot numbers need not be 1..replicas (a scale-down frees any slots): count the distinct ones.
          if (slots.size < svc.replicas)
            taskProblems.push(
              `${m.name}: ${svc.name} has ${slots.size} slots with a task for ${svc.replicas} replicas`,
            )
          if (live.length !== svc.replicas)
            taskProblems.push(`${m.name}: ${svc.name} has ${live.length} tasks for ${svc.replicas} replicas`)
          const notRunning = live.filter((t) => t.Status?.State !== 'running')
          if (notRunning.length > 0)
            taskProblems.push(
              `${m.name}: ${svc.name} tasks not running: ${notRunning.map((t) => `${t.Slot}:${t.Status?.State}@${t.NodeID}`).join(' ')}`,
            )
          tasks += live.length
        }
      }
      return taskProblems.length === 0
    },
    timeoutMs,
    () => taskProblems.slice(0, 20).join('\n'),
  )
  return {
    acknowledgedCreates: acked.length,
    unknownCreates: load.history.filter((o) => o.kind === 'create' && o.outcome === 'unknown').length,
    configs: snaps[0]!.configs.length,
    acknowledgedUpdates: updates.filter((o) => o.outcome === 'ok').length,
    managers: managers.length,
    tasks: tasks / managers.length,
  }
}
