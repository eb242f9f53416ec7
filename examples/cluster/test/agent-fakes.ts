// Fakes for testing an Agent without managers: a dispatcher in memory and assignments.
import type { TaskSpec, TaskState } from '@swarmkit/store'
import type {
  Assignment,
  AssignmentsMessage,
  DispatcherApi,
  NodeInfo,
  TaskStatusUpdate,
} from '../src/index.js'

/** What a test agent says of its node (one small Linux machine). */
export function testNodeInfo(hostname: string): NodeInfo {
  return {
    hostname,
    platform: { os: 'linux', architecture: 'x86_64' },
    resources: { nanoCPUs: 1e9, memoryBytes: 1e9 },
    engineVersion: 'x',
  }
}

/** A complete set of assignments as the dispatcher sends it (in one message). */
export function complete(list: Assignment[]): AssignmentsMessage {
  return { kind: 'assignments', type: 'complete', update: list, remove: [] }
}

/** A dispatcher in memory: tests push complete sets of assignments and read what the agent reported. */
export function fakeDispatcher() {
  const reports: TaskStatusUpdate[] = []
  let push: (() => void) | undefined
  const queue: AssignmentsMessage[] = []
  const api: DispatcherApi = {
    async register() {},
    async heartbeat() {
      return { periodMs: 60_000 }
    },
    async *assignments(_id, signal) {
      while (!signal.aborted) {
        const next = queue.shift()
        if (next) {
          yield next
          continue
        }
        await new Promise<void>((resolve) => {
          push = () => resolve()
          signal.addEventListener('abort', () => resolve(), { once: true })
        })
      }
    },
    async updateStatus(_id, updates) {
      reports.push(...updates)
    },
    async *mesh() {},
  }
  return {
    api,
    reports,
    /** Sends the node's complete set (a test's agent reconciles with each one). */
    assign(list: Assignment[]) {
      queue.push(complete(list))
      push?.()
    },
    /** The last state reported for a task. */
    state(taskId: string): TaskStatusUpdate | undefined {
      return reports.filter((r) => r.taskId === taskId).at(-1)
    },
    states(taskId: string): TaskState[] {
      return reports.filter((r) => r.taskId === taskId).map((r) => r.state)
    },
  }
}

export function task(
  id: string,
  spec: Partial<TaskSpec['containerSpec']> = {},
  extra: Partial<Assignment> = {},
) {
  const a: Assignment = {
    taskId: id,
    serviceId: 'svc',
    serviceName: 'web',
    slot: 1,
    nodeId: 'node1',
    image: 'busybox',
    desiredState: 'running',
    state: 'assigned',
    hostPorts: [],
    ports: [],
    spec: { containerSpec: { image: 'busybox', ...spec } },
    serviceLabels: {},
    networks: [],
    genericResources: [],
    secrets: [],
    configs: [],
    ...extra,
  }
  return a
}
