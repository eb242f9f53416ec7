import type { Config, Network, NewObject, Node, Secret, Service, Task } from '../src/index.js'

export function node(id: string, hostname = id, role: 'worker' | 'manager' = 'worker'): NewObject<Node> {
  return {
    id,
    spec: { labels: {}, role, availability: 'active' },
    role,
    description: {
      hostname,
      platform: { architecture: 'x86_64', os: 'linux' },
      resources: { nanoCPUs: 4e9, memoryBytes: 8 * 2 ** 30 },
      engine: { engineVersion: '28.2.2', labels: {}, plugins: [] },
    },
    status: { state: 'ready', addr: '10.0.0.1' },
  }
}

export function service(
  id: string,
  name: string,
  refs: { networks?: string[]; secrets?: string[]; configs?: string[] } = {},
): NewObject<Service> {
  return {
    id,
    spec: {
      name,
      labels: {},
      mode: { replicated: { replicas: 1 } },
      taskTemplate: {
        containerSpec: {
          image: 'nginx:alpine',
          secrets: (refs.secrets ?? []).map((s) => ({
            secretId: s,
            secretName: s,
            file: { name: s, uid: '0', gid: '0', mode: 0o444 },
          })),
          configs: (refs.configs ?? []).map((c) => ({ configId: c, configName: c })),
        },
        networks: (refs.networks ?? []).map((n) => ({ target: n })),
      },
      endpointSpec: { mode: 'vip', ports: [] },
    },
  }
}

/**
 * The address of task `id` here: one per task ID (the store refuses two live holders of one address), the
 * same each time an ID is made again (a model and a store build their own copies of one task).
 */
const addresses = new Map<string, string>()
function addressOf(id: string): string {
  let a = addresses.get(id)
  if (a === undefined) {
    const n = addresses.size + 1
    a = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}/8`
    addresses.set(id, a)
  }
  return a
}

export function task(
  id: string,
  serviceId: string,
  slot: number,
  nodeId = '',
  refs: { networks?: string[]; secrets?: string[] } = {},
): NewObject<Task> {
  return {
    id,
    serviceId,
    slot,
    nodeId,
    spec: {
      containerSpec: {
        image: 'nginx:alpine',
        secrets: (refs.secrets ?? []).map((s) => ({
          secretId: s,
          secretName: s,
          file: { name: s, uid: '0', gid: '0', mode: 0o444 },
        })),
      },
      networks: (refs.networks ?? []).map((n) => ({ target: n })),
    },
    serviceAnnotations: { name: serviceId, labels: {} },
    status: { timestamp: 0, state: 'new', message: 'created' },
    desiredState: 'running',
    networks: (refs.networks ?? []).map((n) => ({ networkId: n, addresses: [addressOf(id)] })),
  }
}

export function network(id: string, name: string): NewObject<Network> {
  return { id, spec: { name, labels: {}, driverConfig: { name: 'overlay' } } }
}

export function secret(id: string, name: string, data = 'hunter2'): NewObject<Secret> {
  return { id, spec: { name, labels: {}, data: new TextEncoder().encode(data) } }
}

export function config(id: string, name: string, data = 'x=1'): NewObject<Config> {
  return { id, spec: { name, labels: {}, data: new TextEncoder().encode(data) } }
}
