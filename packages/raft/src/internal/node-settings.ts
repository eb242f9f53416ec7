// RaftNodeOptions checked (argument errors name the option) and turned into what the driver runs with:
// timers in ticks, limits, snapshot policy, the bootstrap voters and their addresses.
import type { Clock } from '@swarmkit/transport'
import type { RaftNodeOptions } from '../node-options.js'

export interface NodeSettings {
  readonly voters: string[]
  /** Transport address per bootstrap member (default: its ID). */
  readonly addresses: Map<string, string>
  readonly tickMs: number
  readonly heartbeatTick: number
  readonly electionTick: number
  readonly electionTickMax: number
  readonly checkQuorumTick: number
  readonly electionMaxMs: number
  readonly leaderWaitMs: number
  readonly maxProposalBytes: number
  readonly maxAppendBytes: number
  readonly snapshotThreshold: number
  readonly trailingEntries: number
  readonly chunkBytes: number
  readonly maxSnapshotBytes: number
  readonly maxApplyBacklogBytes: number
  readonly clock: Clock
  readonly random: () => number
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (cb, ms) => setTimeout(cb, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
}

export function positive(name: string, v: unknown, def: number): number {
  if (v === undefined) return def
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw new RangeError(`${name} must be a positive number`)
  return v
}

/** Checks `options` in a fixed order (the first mistake is the one reported). */
export function nodeSettings(options: RaftNodeOptions): NodeSettings {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object')
  const { id, peers, transport, storage, stateMachine } = options
  if (typeof id !== 'string' || id.length === 0 || id.length > 256) {
    throw new TypeError('options.id must be a non-empty string')
  }
  if (!Array.isArray(peers) || peers.length === 0)
    throw new TypeError('options.peers must be a non-empty array')
  const voters: string[] = []
  const addresses = new Map<string, string>()
  for (const p of peers) {
    const pid = typeof p === 'string' ? p : p?.id
    if (typeof pid !== 'string' || pid.length === 0 || pid.length > 256) {
      throw new TypeError('options.peers must hold IDs or { id, address } objects')
    }
    if (voters.includes(pid)) throw new TypeError(`options.peers lists ${pid} twice`)
    voters.push(pid)
    const addr = typeof p === 'string' ? undefined : p.address
    if (addr !== undefined && typeof addr !== 'string')
      throw new TypeError('options.peers[].address must be a string')
    addresses.set(pid, addr ?? pid)
  }
  if (!transport || typeof transport.listen !== 'function' || typeof transport.dial !== 'function') {
    throw new TypeError('options.transport must be a Transport')
  }
  if (!storage || typeof storage.load !== 'function' || typeof storage.save !== 'function') {
    throw new TypeError('options.storage must be a LogStorage')
  }
  if (!stateMachine || typeof stateMachine.apply !== 'function') {
    throw new TypeError('options.stateMachine must have apply, snapshot and restore')
  }
  let eMin = 150
  let eMax = 300
  const et = options.electionTimeoutMs
  if (typeof et === 'number') {
    eMin = positive('options.electionTimeoutMs', et, 150)
    eMax = 2 * eMin
  } else if (et !== undefined) {
    if (!Array.isArray(et) || et.length !== 2)
      throw new TypeError('options.electionTimeoutMs must be a number or [min, max]')
    eMin = positive('options.electionTimeoutMs[0]', et[0], 150)
    eMax = positive('options.electionTimeoutMs[1]', et[1], 300)
    if (eMax < eMin) throw new RangeError('options.electionTimeoutMs: max must be >= min')
  }
  const hb = positive('options.heartbeatIntervalMs', options.heartbeatIntervalMs, 50)
  if (hb >= eMin) throw new RangeError('options.heartbeatIntervalMs must be below the election timeout')
  // Five ticks per heartbeat: fine enough for randomized timeouts, coarse enough to cost nothing idle.
  const tickMs = Math.max(1, hb / 5)
  const heartbeatTick = Math.max(1, Math.round(hb / tickMs))
  const electionTick = Math.max(heartbeatTick + 1, Math.round(eMin / tickMs))
  const electionTickMax = Math.max(electionTick, Math.round(eMax / tickMs))
  const cq = positive('options.checkQuorumMs', options.checkQuorumMs, eMin)
  if (cq < eMin) throw new RangeError('options.checkQuorumMs must be at least the election timeout')
  const checkQuorumTick = Math.max(electionTick, Math.round(cq / tickMs))
  const leaderWaitMs = positive('options.leaderWaitMs', options.leaderWaitMs, 5 * eMax)
  const maxProposalBytes = positive('options.maxProposalBytes', options.maxProposalBytes, 1 << 20)
  const maxAppendBytes = positive('options.maxAppendBytes', options.maxAppendBytes, 1 << 20)
  positive('options.maxInflightAppends', options.maxInflightAppends, 256)
  positive('options.maxInflightBytes', options.maxInflightBytes, 32 << 20)
  positive('options.maxUncommittedBytes', options.maxUncommittedBytes, 64 << 20)
  const st = options.snapshotThreshold
  if (st !== undefined && (!Number.isSafeInteger(st) || st < 0)) {
    throw new RangeError('options.snapshotThreshold must be an integer >= 0')
  }
  const te = options.trailingEntries
  if (te !== undefined && (!Number.isSafeInteger(te) || te < 0)) {
    throw new RangeError('options.trailingEntries must be an integer >= 0')
  }
  const chunkBytes = Math.floor(positive('options.snapshotChunkBytes', options.snapshotChunkBytes, 1 << 20))
  if (chunkBytes > 1 << 20) throw new RangeError('options.snapshotChunkBytes must be at most 1 MiB')
  const maxSnapshotBytes = positive('options.maxSnapshotBytes', options.maxSnapshotBytes, 1 << 30)
  if (options.random !== undefined && typeof options.random !== 'function') {
    throw new TypeError('options.random must be a function')
  }
  const maxApplyBacklogBytes = positive(
    'options.maxApplyBacklogBytes',
    options.maxApplyBacklogBytes,
    64 << 20,
  )
  return {
    voters,
    addresses,
    tickMs,
    heartbeatTick,
    electionTick,
    electionTickMax,
    checkQuorumTick,
    electionMaxMs: eMax,
    leaderWaitMs,
    maxProposalBytes,
    maxAppendBytes,
    snapshotThreshold: st ?? 10_000,
    trailingEntries: te ?? 500,
    chunkBytes,
    maxSnapshotBytes,
    maxApplyBacklogBytes,
    clock: options.clock ?? transport.clock ?? realClock,
    random: options.random ?? Math.random,
  }
}
