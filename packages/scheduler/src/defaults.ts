import type { RestartPolicy, UpdateConfig } from '@swarmkit/store'

/** Swarm's defaults, in milliseconds where they are durations. */
export const DEFAULTS = {
  /** Restart policy: restart on any exit, 5 s apart, without limit. */
  restart: { condition: 'any', delayMs: 5000, maxAttempts: 0, windowMs: 0 },
  /** Rolling update and rollback: one task at a time, no delay, pause on failure, 5 s monitor, stop-first. */
  update: {
    parallelism: 1,
    delayMs: 0,
    failureAction: 'pause',
    monitorMs: 5000,
    maxFailureRatio: 0,
    order: 'stop-first',
  },
  /** Finished tasks kept per slot. */
  taskHistory: 5,
} as const

const NS_PER_MS = 1e6

/** A restart policy with swarm's defaults filled in, durations in ms. */
export function restartPolicy(p: RestartPolicy | undefined): {
  condition: 'none' | 'on-failure' | 'any'
  delayMs: number
  maxAttempts: number
  windowMs: number
} {
  return {
    condition: p?.condition ?? DEFAULTS.restart.condition,
    delayMs: p?.delay === undefined ? DEFAULTS.restart.delayMs : p.delay / NS_PER_MS,
    maxAttempts: p?.maxAttempts ?? 0,
    windowMs: p?.window === undefined ? 0 : p.window / NS_PER_MS,
  }
}

/** An update (or rollback) config with swarm's defaults filled in, durations in ms. */
export function updateConfig(c: UpdateConfig | undefined): {
  parallelism: number
  delayMs: number
  failureAction: 'pause' | 'continue' | 'rollback'
  monitorMs: number
  maxFailureRatio: number
  order: 'stop-first' | 'start-first'
} {
  return {
    parallelism: c?.parallelism ?? DEFAULTS.update.parallelism,
    delayMs: c?.delay === undefined ? DEFAULTS.update.delayMs : c.delay / NS_PER_MS,
    failureAction: c?.failureAction ?? DEFAULTS.update.failureAction,
    monitorMs: c?.monitor === undefined ? DEFAULTS.update.monitorMs : c.monitor / NS_PER_MS,
    maxFailureRatio: c?.maxFailureRatio ?? DEFAULTS.update.maxFailureRatio,
    order: c?.order ?? DEFAULTS.update.order,
  }
}
