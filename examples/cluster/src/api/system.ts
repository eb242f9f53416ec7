// Engine API: the node itself (`docker version`, `docker info`, `docker events`) and the registry lookup the
// CLI makes before it pins an image.

import { cpus, totalmem } from 'node:os'
import type { Daemon } from '../daemon.js'
import { ENGINE_VERSION } from '../engine-version.js'
import { ApiError } from '../errors.js'
import { eventsStream } from '../events.js'
import { API_VERSION, MIN_API_VERSION, type Route, type RouteContext } from './route.js'
import { clusterJson } from './swarm.js'

export function systemRoutes({ d }: RouteContext): Route[] {
  return [
    ['GET', /^\/version$/, () => ({ json: versionJson() })],
    ['GET', /^\/info$/, () => ({ json: infoJson(d) })],
    [
      'GET',
      /^\/events$/,
      ({ query }) => {
        const stream = eventsStream(d.manager?.events, query)
        return {
          stream: (res) => {
            res.setHeader('Api-Version', API_VERSION)
            stream(res)
          },
        }
      },
    ],
  ]
}

export function registryRoutes(): Route[] {
  return [
    // ---- registry: none without an engine, so the CLI warns and keeps the image unpinned (with an
    // engine, the request goes to it and it asks the registry: see engine-proxy.ts).
    [
      'GET',
      /^\/distribution\/(.+)\/json$/,
      ({ params }) => {
        throw new ApiError(404, `no registry is reachable from this reference cluster (${params[0]})`)
      },
    ],
  ]
}

function versionJson() {
  return {
    Platform: { Name: 'swarmkit reference cluster' },
    Components: [
      {
        Name: 'Engine',
        Version: ENGINE_VERSION,
        Details: {
          ApiVersion: API_VERSION,
          MinAPIVersion: MIN_API_VERSION,
          GitCommit: 'swarmkit',
          GoVersion: `node${process.versions.node}`,
          Os: 'linux',
          Arch: 'amd64',
          KernelVersion: process.platform,
          BuildTime: new Date(0).toISOString(),
          Experimental: 'false',
        },
      },
    ],
    Version: ENGINE_VERSION,
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: 'swarmkit',
    GoVersion: `node${process.versions.node}`,
    Os: 'linux',
    Arch: 'amd64',
    KernelVersion: process.platform,
    BuildTime: new Date(0).toISOString(),
  }
}

export function infoJson(d: Daemon) {
  const m = d.manager
  let swarm: Record<string, unknown> = {
    NodeID: d.nodeId,
    NodeAddr: '',
    LocalNodeState: d.state,
    ControlAvailable: !!m,
    Error: '',
    RemoteManagers: null,
  }
  if (d.role === 'worker') {
    const known = d.knownManagers.map((m) => ({ NodeID: '', Addr: m.addr || m.control }))
    swarm = { ...swarm, RemoteManagers: known.length > 0 ? known : [{ NodeID: '', Addr: d.remoteManager }] }
  }
  // The node's own containers, as moby counts its engine's: what this node's agent runs (a manager runs one
  // too). Not the store's tasks by node: that index is rebuilt over every task of the swarm after a burst of
  // writes, on the manager's event loop (info-cost.test.ts).
  const running = d.agent ? d.agent.tasks().filter((t) => t.state === 'running').length : 0
  if (m) {
    const c = m.cluster()
    const { nodes, managers, remotes } = m.store.view((tx) => {
      // Every node, once (a few thousand frozen objects: well under a millisecond).
      const all = tx.find('nodes')
      const mgrs = all.filter((n) => n.managerStatus)
      return {
        nodes: all.length,
        managers: mgrs.length,
        remotes: mgrs.map((n) => ({ NodeID: n.id, Addr: n.managerStatus!.addr })),
      }
    })
    const self = m.store.view((tx) => tx.get('nodes', d.nodeId))
    swarm = {
      ...swarm,
      NodeAddr: self?.status.addr ?? '',
      RemoteManagers: remotes,
      Nodes: nodes,
      Managers: managers,
      ...(c ? { Cluster: clusterJson(c) } : {}),
    }
  }
  return {
    ID: d.nodeId,
    Containers: running,
    ContainersRunning: running,
    ContainersPaused: 0,
    ContainersStopped: 0,
    Images: 0,
    Driver: d.executorKind,
    Name: d.hostname,
    ServerVersion: ENGINE_VERSION,
    OperatingSystem: `swarmkit reference cluster (${d.executorKind} executor)`,
    OSType: 'linux',
    Architecture: 'x86_64',
    NCPU: cpus().length,
    MemTotal: totalmem(),
    KernelVersion: process.platform,
    Plugins: { Volume: null, Network: ['overlay'], Authorization: null, Log: ['json-file'] },
    Swarm: swarm,
    SecurityOptions: [],
    Warnings: null,
  }
}
