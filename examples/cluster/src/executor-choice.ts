// Which executor a node runs: the Docker Engine named by `--engine-addr`, else the engine at the default
// socket if one answers there, else the simulated executor. The choice is the node's first log line.

import { type DockerExecutor, dockerExecutor, engineAnswers, type TaskNetworking } from './docker-executor.js'
import { parseEngineAddress } from './engine-client.js'
import type { NodeDescription } from './executor.js'
import { taskNetworkingSupported } from './task-networking.js'
import { workerNetworking } from './worker-network.js'

export const DEFAULT_ENGINE_ADDR = 'unix:///var/run/docker.sock'

export interface ExecutorChoice {
  /** The docker executor, or undefined for the simulated one. */
  readonly executor: DockerExecutor | undefined
  /** One line saying which executor runs the tasks, and why. */
  readonly line: string
}

export async function chooseExecutor(options: {
  engineAddr?: string
  hostname: string
  /**
   * Default: overlay networks with node-local sandboxes for other tasks (workerNetworking) where the machine
   * allows them (root), else none.
   */
  networking?: TaskNetworking
  genericResources?: NodeDescription['resources']['genericResources']
  log?: (line: string) => void
}): Promise<ExecutorChoice> {
  const addr = options.engineAddr ?? DEFAULT_ENGINE_ADDR
  parseEngineAddress(addr)
  const make = async () => {
    const networking =
      options.networking ??
      ((await taskNetworkingSupported())
        ? workerNetworking(options.log ? { log: options.log } : {})
        : undefined)
    return {
      executor: dockerExecutor({
        engineAddr: addr,
        hostname: options.hostname,
        ...(networking ? { networking } : {}),
        ...(options.genericResources ? { genericResources: options.genericResources } : {}),
        ...(options.log ? { log: options.log } : {}),
      }),
      net: networking ? '' : '; containers without network (task networking needs root and iproute2)',
    }
  }
  if (options.engineAddr !== undefined) {
    const { executor, net } = await make()
    const up = await engineAnswers(addr)
    return {
      executor,
      line: `executor: docker, engine at ${addr}${up ? '' : ' (not answering yet: tasks fail until it does)'}${net}`,
    }
  }
  if (await engineAnswers(addr)) {
    const { executor, net } = await make()
    return { executor, line: `executor: docker, engine at ${addr} (found)${net}` }
  }
  return { executor: undefined, line: `executor: simulated (no engine answers at ${addr})` }
}

/**
 * `--node-generic-resource KIND=VALUE` as swarm's dockerd reads it: a number is a discrete resource
 * (`ssd=2`), anything else a named one (`gpu=UUID1`, one flag per named value).
 */
export function parseGenericResources(
  values: readonly string[],
): NonNullable<NodeDescription['resources']['genericResources']> {
  return values.map((v) => {
    const cut = v.indexOf('=')
    const kind = v.slice(0, cut)
    const value = v.slice(cut + 1)
    if (cut <= 0 || !value || !/^[A-Za-z0-9_.-]+$/.test(kind))
      throw new TypeError(`--node-generic-resource ${v}: expected KIND=VALUE`)
    return /^\d+$/.test(value)
      ? { discreteResourceSpec: { kind, value: Number(value) } }
      : { namedResourceSpec: { kind, value } }
  })
}
