import type { Node, Service, ServiceSpec, Task, TaskSpec } from '@swarmkit/store'

export function node(
  id: string,
  over: Partial<{
    hostname: string
    role: 'worker' | 'manager'
    labels: Record<string, string>
    engineLabels: Record<string, string>
    state: 'ready' | 'down' | 'unknown' | 'disconnected'
    availability: 'active' | 'pause' | 'drain'
    addr: string
    os: string
    arch: string
    cpu: number
    mem: number
    generic: Node['description'] extends infer D
      ? D extends { resources: { genericResources?: infer G } }
        ? G
        : never
      : never
  }> = {},
): Node {
  return {
    id,
    meta: { version: 1, createdAt: 0, updatedAt: 0 },
    spec: {
      labels: over.labels ?? {},
      role: over.role ?? 'worker',
      availability: over.availability ?? 'active',
    },
    role: over.role ?? 'worker',
    description: {
      hostname: over.hostname ?? `host-${id}`,
      platform: { os: over.os ?? 'linux', architecture: over.arch ?? 'x86_64' },
      resources: {
        nanoCPUs: over.cpu ?? 4e9,
        memoryBytes: over.mem ?? 8 * 2 ** 30,
        genericResources: over.generic,
      },
      engine: { engineVersion: '28.2.2', labels: over.engineLabels ?? {}, plugins: [] },
    },
    status: { state: over.state ?? 'ready', addr: over.addr ?? '10.0.0.1' },
  }
}

export function taskSpec(over: Partial<TaskSpec> = {}): TaskSpec {
  return { containerSpec: { image: 'nginx:alpine' }, ...over }
}

export function task(id: string, serviceId: string, over: Partial<Task> = {}): Task {
  return {
    id,
    meta: { version: 1, createdAt: 0, updatedAt: 0 },
    spec: taskSpec(),
    specVersion: { index: 1 },
    serviceId,
    slot: 1,
    nodeId: '',
    serviceAnnotations: { name: serviceId, labels: {} },
    status: { timestamp: 0, state: 'pending', message: 'pending task scheduling' },
    desiredState: 'running',
    networks: [],
    ...over,
  }
}

export function serviceSpec(name: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name,
    labels: {},
    taskTemplate: taskSpec(),
    mode: { replicated: { replicas: 1 } },
    ...over,
  }
}

export function service(id: string, spec: ServiceSpec): Service {
  return { id, meta: { version: 1, createdAt: 0, updatedAt: 0 }, spec, specVersion: { index: 1 } }
}

/** Waits (by yielding to the event loop, never by sleeping) until `cond` holds; fails after `max` turns. */
export async function until(cond: () => boolean, max = 5000): Promise<void> {
  for (let i = 0; i < max; i++) {
    if (cond()) return
    await new Promise((r) => setImmediate(r))
  }
  throw new Error('condition not reached')
}

/** A store object without `meta`, for `tx.create`. */
export function fresh<T extends { meta: unknown }>(o: T): Omit<T, 'meta'> {
  const { meta: _meta, ...rest } = o
  return rest
}
