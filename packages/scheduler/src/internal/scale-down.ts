import type { Task } from '@swarmkit/store'

/**
 * The slots a scale-down removes, as swarm chooses them: slots with nothing running go first, then slots from
 * the nodes with the most tasks of the service (each node's tasks are ranked 1, 2, 3, ... and the highest
 * ranks go first), lower slot numbers kept on ties. Sorts precomputed keys (a comparator that looked each
 * slot's tasks up again cost a 60,000-slot service hundreds of milliseconds of a manager's event loop in
 * every pass of a scale-down).
 */
export function slotsToRemove(live: Iterable<number>, active: Map<number, Task[]>, keep: number): number[] {
  const slots = Int32Array.from(live).sort()
  const n = slots.length
  if (n <= keep) return []
  const running = new Uint8Array(n)
  for (let i = 0; i < n; i++)
    running[i] = (active.get(slots[i] as number) ?? []).some((t) => t.status.state === 'running') ? 1 : 0
  // Running slots first, in slot order (a stable partition).
  const order: number[] = []
  for (let i = 0; i < n; i++) if (running[i]) order.push(i)
  for (let i = 0; i < n; i++) if (!running[i]) order.push(i)
  // Each slot's rank on its node in that order; a slot without exactly one placed task ranks last.
  const rank = new Float64Array(n)
  const perNode = new Map<string, number>()
  for (const i of order) {
    const list = active.get(slots[i] as number) ?? []
    const only = list.length === 1 ? list[0] : undefined
    if (!only?.nodeId) {
      rank[i] = Number.POSITIVE_INFINITY
      continue
    }
    const r = (perNode.get(only.nodeId) ?? 0) + 1
    perNode.set(only.nodeId, r)
    rank[i] = r
  }
  const position = new Int32Array(n)
  order.forEach((i, p) => {
    position[i] = p
  })
  order.sort(
    (a, b) => (rank[a] as number) - (rank[b] as number) || (position[a] as number) - (position[b] as number),
  )
  return order.slice(keep).map((i) => slots[i] as number)
}
