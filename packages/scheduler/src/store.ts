import type { ClusterStore } from '@swarmkit/store'
import { typeError } from './internal/check.js'

/**
 * The part of `@swarmkit/store`'s `ClusterStore` the scheduler and orchestrators use: consistent views,
 * atomic updates, and watches that resume from a version. A `ClusterStore` (local or replicated) fits.
 */
export type SchedulerStore = Pick<ClusterStore, 'view' | 'update' | 'watch'>

/** A log sink; libraries stay silent unless given one. */
export type Logger = (
  level: 'debug' | 'info' | 'warn' | 'error',
  message: string,
  fields?: Record<string, unknown>,
) => void

export const silentLogger: Logger = () => {}

export function checkStore(store: unknown, name: string): asserts store is SchedulerStore {
  const s = store as Record<string, unknown> | null
  if (
    typeof s !== 'object' ||
    s === null ||
    typeof s.view !== 'function' ||
    typeof s.update !== 'function' ||
    typeof s.watch !== 'function'
  )
    throw typeError(name, 'be a store with view, update and watch (a ClusterStore)')
}
