// What a manager reports as it works, for metrics and debug logs: raft proposals, applies, snapshots and log
// syncs, store commits, heartbeats and task status reports. Every hook is optional and must not throw; the
// metrics (src/metrics.ts) and the debug log (src/logging.ts) are observers, and `combineObservers` joins them.

import type { RaftLogger, StateMachine } from '@swarmkit/raft'
import type { Manager } from './manager.js'

export interface ManagerObserver {
  /** A proposal was committed and applied here (`ok`), or failed; ms since it was made. */
  raftProposal?(ms: number, ok: boolean): void
  /** One committed entry applied to the store. */
  raftApply?(ms: number): void
  /** A snapshot of the store was taken (its size in bytes). */
  raftSnapshot?(bytes: number): void
  /** A durable write of raft log records (O_DSYNC, i.e. the WAL fsync). */
  walSync?(ms: number, bytes: number): void
  /** A store transaction committed (through raft). */
  storeCommit?(ms: number, changes: number): void
  /** A heartbeat from a node reached this manager's dispatcher. */
  heartbeat?(nodeId: string): void
  /** A node reported task status changes, `count` in one batch. */
  statusUpdates?(nodeId: string, count: number): void
  /** Raft's own log lines (debug detail, warnings). */
  raftLog?: RaftLogger
  /** A manager started: its raft node, store, dispatcher and events can be followed. */
  started?(manager: Manager): void
}

/** One observer that calls each of `observers` in turn (an undefined one is skipped). */
export function combineObservers(...observers: (ManagerObserver | undefined)[]): ManagerObserver {
  const list = observers.filter((o): o is ManagerObserver => !!o)
  const each =
    <K extends Exclude<keyof ManagerObserver, 'raftLog'>>(key: K) =>
    (...args: Parameters<NonNullable<ManagerObserver[K]>>) => {
      for (const o of list) (o[key] as ((...a: unknown[]) => void) | undefined)?.(...args)
    }
  const logs = list.map((o) => o.raftLog).filter((l): l is RaftLogger => !!l)
  const log = (level: keyof RaftLogger) => (message: string, fields?: Record<string, unknown>) => {
    for (const l of logs) l[level]?.(message, fields)
  }
  return {
    raftProposal: each('raftProposal'),
    raftApply: each('raftApply'),
    raftSnapshot: each('raftSnapshot'),
    walSync: each('walSync'),
    storeCommit: each('storeCommit'),
    heartbeat: each('heartbeat'),
    statusUpdates: each('statusUpdates'),
    started: each('started'),
    ...(logs.length > 0 ? { raftLog: { debug: log('debug'), warn: log('warn'), error: log('error') } } : {}),
  }
}

/** The store as raft's state machine, with each apply timed and each snapshot's size reported. */
export function observedStateMachine(sm: StateMachine, observer: ManagerObserver | undefined): StateMachine {
  if (!observer) return sm
  return {
    apply(command, index) {
      const started = performance.now()
      const r = sm.apply(command, index)
      observer.raftApply?.(performance.now() - started)
      return r
    },
    snapshot() {
      const r = sm.snapshot()
      if (r instanceof Uint8Array) observer.raftSnapshot?.(r.length)
      else
        void r.then(
          (d) => observer.raftSnapshot?.(d.length),
          () => {},
        )
      return r
    },
    restore: (snapshot) => sm.restore(snapshot),
  }
}
