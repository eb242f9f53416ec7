import { describe, expect, it } from 'vitest'
import { INDEXES, keptIndexes, TableState } from '../src/internal/indexes.js'
import type { Task } from '../src/types.js'
import { task } from './fixtures.js'

// Indexes are built on a lookup and dropped once keeping them costs more than building them again. What a
// write costs an index is a move between keys; a write that leaves its keys (a status report, for every index
// but the task state) costs two key computations and must not count towards dropping it. Else a follower's
// per-node index was gone after any burst of status reports, and the first stream of each agent that failed
// over to it rebuilt it over every task: 1.2 s of a stalled loop at 300,000 tasks (issue #18).
const tasks = () => new TableState<Task>(INDEXES.tasks as never, keptIndexes('tasks'))
const placed = (i: number, nodeId: string, state: Task['status']['state'] = 'running'): Task =>
  ({
    ...task(`t${i}`, 's1', i, nodeId),
    status: { timestamp: 0, state, message: '' },
    meta: { version: 1, createdAt: 0, updatedAt: 0 },
  }) as Task

describe('lazy indexes', () => {
  it('keeps an index through writes that leave its keys as they were', () => {
    const t = tasks()
    for (let i = 0; i < 2000; i++) t.put(`t${i}`, undefined, placed(i, `n${i % 50}`))
    const byNetwork = t.index('network')
    const byService = t.index('serviceId')
    for (let round = 0; round < 3; round++)
      for (let i = 0; i < 2000; i++) {
        const prev = t.objects.get(`t${i}`)!
        t.put(`t${i}`, prev, { ...prev, status: { ...prev.status, timestamp: round + 1 } })
      }
    expect(t.index('network')).toBe(byNetwork)
    expect(t.index('serviceId')).toBe(byService)
  })

  it('still drops an index whose keys the writes keep moving, and answers right after', () => {
    const t = tasks()
    for (let i = 0; i < 2000; i++) t.put(`t${i}`, undefined, placed(i, 'n1', 'assigned'))
    const byState = t.index('taskState')
    for (const state of ['running', 'complete'] as const)
      for (let i = 0; i < 2000; i++) {
        const prev = t.objects.get(`t${i}`)!
        t.put(`t${i}`, prev, { ...prev, status: { ...prev.status, state } })
      }
    const again = t.index('taskState')
    expect(again).not.toBe(byState)
    expect([...t.lookup('taskState', 'complete')]).toHaveLength(2000)
    expect([...t.lookup('taskState', 'running')]).toHaveLength(0)
  })

  it("never drops the tasks' per-node index: agents that fail over read it at once", () => {
    const t = tasks()
    for (let i = 0; i < 2000; i++) t.put(`t${i}`, undefined, placed(i, `n${i % 50}`))
    const byNode = t.index('nodeId')
    for (let round = 0; round < 3; round++)
      for (let i = 0; i < 2000; i++) {
        const prev = t.objects.get(`t${i}`)!
        t.put(`t${i}`, prev, { ...prev, nodeId: `n${(i + round + 1) % 50}` })
      }
    expect(t.index('nodeId')).toBe(byNode)
    const on = (n: string) => [...t.lookup('nodeId', n)].sort()
    const scan = (n: string) =>
      [...t.objects.values()]
        .filter((x) => x.nodeId === n)
        .map((x) => x.id)
        .sort()
    for (const n of ['n0', 'n7', 'n49']) expect(on(n)).toEqual(scan(n))
  })
})
