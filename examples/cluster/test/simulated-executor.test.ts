import { execFile } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import {
  Agent,
  type ClusterNode,
  SIMULATE_LABELS,
  type SimulatedExecutor,
  simulatedExecutor,
} from '../src/index.js'
import { fakeDispatcher, task, testNodeInfo } from './agent-fakes.js'
import { node, ok, stateDir, waitFor } from './helpers.js'

describe('Agent on the simulated executor', () => {
  let agent: Agent | undefined
  let executor: SimulatedExecutor
  afterEach(async () => {
    await agent?.stop()
    await executor?.close()
    agent = undefined
  })

  async function start() {
    const d = fakeDispatcher()
    executor = simulatedExecutor({ hostname: 'n1', addr: '127.0.0.1', stepMs: 10 })
    agent = new Agent({
      nodeId: 'node1',
      dispatcher: d.api,
      info: testNodeInfo('n1'),
      addr: '127.0.0.1',
      executor,
    })
    await agent.start()
    return d
  }

  it('reports every state up to running, with the endpoint where the task answers', async () => {
    const d = await start()
    d.assign([task('t1')])
    const running = await waitFor(() => d.state('t1')?.state === 'running' && d.state('t1'), 't1 running')
    expect(d.states('t1')).toEqual(['accepted', 'preparing', 'starting', 'running'])
    const page = await (await fetch(`http://127.0.0.1:${running.endpoint!.port}/`)).text()
    expect(page).toContain('web.1.t1 on n1, image busybox')
  })

  it("fails a task that exits non-zero with swarm's error text, and completes one that exits 0", async () => {
    const d = await start()
    d.assign([
      task('bad', { labels: { [SIMULATE_LABELS.exitCode]: '3', [SIMULATE_LABELS.exitAfter]: '20' } }),
      task('job', { labels: { [SIMULATE_LABELS.exitCode]: '0', [SIMULATE_LABELS.exitAfter]: '20' } }),
    ])
    const bad = await waitFor(() => d.state('bad')?.state === 'failed' && d.state('bad'), 'bad failed')
    expect(bad).toMatchObject({ err: 'task: non-zero exit (3)', containerStatus: { exitCode: 3 } })
    const job = await waitFor(() => d.state('job')?.state === 'complete' && d.state('job'), 'job complete')
    expect(job).toMatchObject({ message: 'finished', containerStatus: { exitCode: 0 } })
  })

  it('rejects a task whose prepare fails, and fails one whose start fails', async () => {
    const d = await start()
    d.assign([
      task('r', { labels: { [SIMULATE_LABELS.prepareError]: 'No such image: nope:latest' } }),
      task('s', { labels: { [SIMULATE_LABELS.startError]: 'starting container failed: boom' } }),
    ])
    await waitFor(() => d.state('r')?.state === 'rejected', 'r rejected')
    expect(d.state('r')?.err).toBe('No such image: nope:latest')
    await waitFor(() => d.state('s')?.state === 'failed', 's failed')
    expect(d.state('s')?.err).toBe('starting container failed: boom')
  })

  it('runs a task with a healthcheck only once healthy, and fails it when it turns unhealthy', async () => {
    const d = await start()
    const check = { healthcheck: { test: ['CMD', 'true'] } }
    d.assign([
      task('h', check),
      task('u', {
        ...check,
        labels: { [SIMULATE_LABELS.health]: 'unhealthy', [SIMULATE_LABELS.healthAfter]: '1' },
      }),
    ])
    await waitFor(() => d.state('h')?.state === 'running', 'h running')
    await waitFor(() => d.state('u')?.state === 'failed', 'u failed')
    expect(d.states('u')).not.toContain('running')
    expect(d.state('u')?.err).toBe('unhealthy container')
    // A running task that turns unhealthy later fails too.
    executor.setHealth('h', 'unhealthy')
    await waitFor(() => d.state('h')?.state === 'failed', 'h failed')
    expect(d.state('h')?.err).toBe('unhealthy container')
  })

  it('follows exits made by a test, shuts tasks down, and removes tasks that leave the assignments', async () => {
    const d = await start()
    d.assign([task('a'), task('b')])
    await waitFor(
      () => d.state('a')?.state === 'running' && d.state('b')?.state === 'running',
      'a, b running',
    )
    executor.exit('a', 1)
    await waitFor(() => d.state('a')?.state === 'failed', 'a failed')
    expect(d.state('a')?.err).toBe('task: non-zero exit (1)')
    d.assign([
      task('a', {}, { state: 'failed', desiredState: 'shutdown' }),
      task('b', {}, { state: 'running', desiredState: 'shutdown' }),
    ])
    await waitFor(() => d.state('b')?.state === 'shutdown', 'b shut down')
    expect(executor.taskIds().sort()).toEqual(['a', 'b'])
    d.assign([])
    await waitFor(() => executor.taskIds().length === 0, 'tasks removed')
  })

  it('adopts the running tasks of an earlier agent and removes the ones no longer assigned', async () => {
    const d = await start()
    d.assign([task('keep'), task('gone')])
    await waitFor(
      () => d.state('keep')?.state === 'running' && d.state('gone')?.state === 'running',
      'running',
    )
    await agent!.stop()
    // A new agent on the same executor: the managers now assign only `keep`, as running.
    agent = new Agent({
      nodeId: 'node1',
      dispatcher: d.api,
      info: testNodeInfo('n1'),
      addr: '127.0.0.1',
      executor,
    })
    await agent.start()
    const before = d.reports.length
    d.assign([task('keep', {}, { state: 'running' })])
    await waitFor(() => executor.taskIds().join() === 'keep', 'orphan removed')
    expect(d.reports.slice(before).filter((r) => r.taskId === 'keep' && r.state !== 'running')).toEqual([])
    executor.exit('keep', 0)
    await waitFor(() => d.state('keep')?.state === 'complete', 'adopted task followed to its end')
  })
})

describe('task outcomes through the docker CLI (simulated executor)', () => {
  let n: ClusterNode | undefined
  afterEach(async () => {
    await n?.close()
    n = undefined
  })

  it("shows a failed task's exit as docker service ps does", async () => {
    n = await node('sim-cli')
    await ok(n, ['swarm', 'init'])
    await ok(n, [
      'service',
      'create',
      '--name',
      'crash',
      '--detach',
      '--container-label',
      `${SIMULATE_LABELS.exitCode}=1`,
      '--container-label',
      `${SIMULATE_LABELS.exitAfter}=50`,
      'busybox',
    ])
    const errors = await waitFor(async () => {
      const out = await ok(n!, [
        'service',
        'ps',
        'crash',
        '--no-trunc',
        '--format',
        '{{.CurrentState}}|{{.Error}}',
      ])
      return out.split('\n').find((l) => l.includes('task: non-zero exit (1)'))
    }, 'a failed task in docker service ps')
    expect(errors).toMatch(/^Failed .*\|"?task: non-zero exit \(1\)"?$/)
    const failed = n.daemon.manager!.store.view((tx) =>
      tx.find('tasks').find((t) => t.status.state === 'failed'),
    )
    expect(failed?.status.containerStatus?.exitCode).toBe(1)
  })
})

describe('secrets on the wire', () => {
  let nodes: ClusterNode[] = []
  afterEach(async () => {
    await Promise.all(nodes.map((n) => n.close()))
    nodes = []
  })

  it('go only to the node that runs a task using them, and are kept there in memory only', async () => {
    const [mgr, wrk] = (nodes = [await node('sec-mgr'), await node('sec-wrk')])
    await ok(mgr!, ['swarm', 'init'])
    const token = (await ok(mgr!, ['swarm', 'join-token', '-q', 'worker'])).trim()
    await ok(wrk!, ['swarm', 'join', '--token', token, mgr!.daemon.manager!.joinAddr])
    const value = `wire-${Math.random().toString(36).slice(2)}`
    await ok(mgr!, ['secret', 'create', 'token', '-'], value)
    await ok(mgr!, [
      'service',
      'create',
      '-d',
      '--name',
      'uses',
      '--secret',
      'token',
      '--constraint',
      'node.role==worker',
      'busybox',
    ])
    await waitFor(
      async () =>
        (await ok(mgr!, ['service', 'ps', 'uses', '--format', '{{.CurrentState}}'])).startsWith('Running'),
      'the task running on the worker',
    )
    const first = async (nodeId: string) => {
      const stop = new AbortController()
      for await (const m of mgr!.daemon.manager!.dispatcher.assignments(nodeId, stop.signal)) {
        stop.abort()
        return m.update
      }
      return []
    }
    const onWorker = await first(wrk!.daemon.nodeId)
    expect(onWorker.flatMap((a) => a.secrets.map((s) => Buffer.from(s.data).toString()))).toEqual([value])
    const onManager = await first(mgr!.daemon.nodeId)
    expect(JSON.stringify(onManager)).not.toContain(value)
    expect(onManager.flatMap((a) => a.secrets)).toEqual([])
    // Nothing on disk in clear: neither node's state directory holds the value.
    const found = await new Promise<string>((resolve) =>
      execFile('grep', ['-rl', '--binary-files=text', value, stateDir('')], (_err, out) =>
        resolve(String(out)),
      ),
    )
    expect(found).toBe('')
  })
})
