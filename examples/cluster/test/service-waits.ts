// Services through the docker CLI, shared by the orchestration tests: created without resolving the image
// (no registry here), and waits on what the CLI shows: `docker service ls` reaching a value (replicas, a
// job's completions), an update reaching a state.
import type { ClusterNode } from '../src/index.js'
import { dumpTasks, ok, waitFor } from './helpers.js'

/** `docker service create -d --no-resolve-image --name NAME ARGS…` (ARGS end with the image and command). */
export function createService(n: ClusterNode, name: string, ...args: string[]): Promise<string> {
  return ok(n, ['service', 'create', '-d', '--no-resolve-image', '--name', name, ...args])
}

export interface ServiceWaitOptions {
  /** How long to wait. Default 30 s. */
  readonly ms?: number
  /** What to print should the wait time out. Default: the node's services and tasks. */
  readonly explain?: () => string
}

/**
 * Waits until `docker service ls --filter name=SERVICE --format FORMAT` prints `want` (format default
 * `{{.Replicas}}`, e.g. `2/2` or `0/2 (4/4 completed)`).
 */
export async function waitServiceLs(
  n: ClusterNode,
  service: string,
  want: string,
  options: ServiceWaitOptions & { readonly format?: string } = {},
): Promise<void> {
  const format = options.format ?? '{{.Replicas}}'
  await waitFor(
    async () =>
      (await ok(n, ['service', 'ls', '--filter', `name=${service}`, '--format', format])).trim() === want,
    `${service} ${want}`,
    options.ms ?? 30_000,
    options.explain ?? (() => dumpTasks(n)),
  )
}

/** Waits until the service's update state starts with `state`; returns `State|Message` as inspect shows them. */
export function waitUpdateState(
  n: ClusterNode,
  service: string,
  state: string,
  options: ServiceWaitOptions = {},
): Promise<string> {
  return waitFor(
    async () => {
      const s = (
        await ok(n, [
          'service',
          'inspect',
          service,
          '--format',
          '{{.UpdateStatus.State}}|{{.UpdateStatus.Message}}',
        ])
      ).trim()
      return s.startsWith(state) && s
    },
    `the update of ${service} ${state}`,
    options.ms ?? 60_000,
    options.explain ?? (() => dumpTasks(n)),
  )
}
