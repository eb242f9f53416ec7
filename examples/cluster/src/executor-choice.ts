// Which executor a node runs: the Docker Engine named by `--engine-addr`, else the engine at the default
// socket if one answers there, else the simulated executor. The choice is the node's first log line.

import { type DockerExecutor, dockerExecutor, engineAnswers, type TaskNetworking } from './docker-executor.js'

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
  networking?: TaskNetworking
  log?: (line: string) => void
}): Promise<ExecutorChoice> {
  const addr = options.engineAddr ?? DEFAULT_ENGINE_ADDR
  const make = () =>
    dockerExecutor({
      engineAddr: addr,
      hostname: options.hostname,
      ...(options.networking ? { networking: options.networking } : {}),
      ...(options.log ? { log: options.log } : {}),
    })
  if (options.engineAddr !== undefined) {
    const executor = make()
    const up = await engineAnswers(addr)
    return {
      executor,
      line: `executor: docker, engine at ${addr}${up ? '' : ' (not answering yet: tasks fail until it does)'}`,
    }
  }
  if (await engineAnswers(addr))
    return { executor: make(), line: `executor: docker, engine at ${addr} (found)` }
  return { executor: undefined, line: `executor: simulated (no engine answers at ${addr})` }
}
