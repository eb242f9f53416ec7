// Raft wiring for a manager: FileLogStorage sealed by the store's KeyManager, the store as raft's state
// machine (observed for metrics, scoped to the leadership a duty started under), raft over mutual TLS.

import { join as joinPath } from 'node:path'
import * as pki from '@swarmkit/pki'
import { FileLogStorage, proposeScoped, RaftNode, scopedStateMachine } from '@swarmkit/raft'
import { ClusterStore, DEFAULT_MAX_COMMAND_BYTES } from '@swarmkit/store'
import { type TlsTransport, tlsTransport } from '@swarmkit/transport'
import { currentDutyTerm } from '../leader-scope.js'
import { observedStateMachine } from '../observer.js'
import { reencryptAtRest } from '../reencrypt.js'
import { snapshotCommitted } from './force-new-cluster.js'
import type { ManagerOptions } from './options.js'

/** The replicated store of a manager: the raft log on disk, the store, and the raft node that drives it. */
export interface Replication {
  readonly storage: FileLogStorage
  readonly store: ClusterStore
  readonly raft: RaftNode
  /** Raft's mutual TLS transport (renewed credentials are handed to it). */
  readonly raftTransport: TlsTransport
}

/**
 * Opens the raft log (sealed by the store's KeyManager, finishing an interrupted re-encryption first), and
 * makes the store with raft as its proposer and raft with the store as its state machine. Raft is not
 * started yet.
 */
export async function openReplication(options: ManagerOptions): Promise<Replication> {
  const { nodeId, clusterId, credentials } = options
  const raftId = options.raftId ?? nodeId
  const keys = options.keys
  const obs = options.observer
  const storage = await FileLogStorage.open(joinPath(options.stateDir, 'raft'), {
    nodeId,
    clusterId,
    ...keys.hooks(),
    ...(obs?.walSync ? { onSync: (ms: number, bytes: number) => obs.walSync!(ms, bytes) } : {}),
  })
  // A data key rotation that a crash interrupted is finished before anything else is written.
  await reencryptAtRest(keys, storage)
  if (options.forceNewCluster) await snapshotCommitted(storage, raftId)
  const keyPem = pki.encodePrivateKeyPem(credentials.key.privateKey)
  let raft: RaftNode | undefined
  const store = new ClusterStore({
    maxCommandBytes: DEFAULT_MAX_COMMAND_BYTES,
    ...(options.specLimits ? { limits: options.specLimits } : {}),
    proposer: (command, o) => {
      if (!raft) return Promise.reject(new Error('raft is not running'))
      const started = performance.now()
      // A leader duty's write commits only under the leadership it started with (leader-scope.ts).
      const term = currentDutyTerm()
      const proposed = term === undefined ? raft.propose(command, o) : proposeScoped(raft, term, command, o)
      return proposed.then(
        (r) => {
          obs?.raftProposal?.(performance.now() - started, true)
          return r.result
        },
        (err) => {
          obs?.raftProposal?.(performance.now() - started, false)
          throw err
        },
      )
    },
    ...(obs?.storeCommit
      ? { onCommit: (c: { ms: number; changes: number }) => obs.storeCommit!(c.ms, c.changes) }
      : {}),
  })
  const raftTransport = tlsTransport({
    key: keyPem,
    cert: credentials.certificate,
    ca: credentials.roots,
    authorize: pki.authorizer({ roles: ['swarm-manager'], clusterId }),
  })
  const node = new RaftNode({
    id: raftId,
    peers: options.raftPeers ?? [{ id: raftId, address: options.raftAddr }],
    address: options.raftAddr,
    transport: raftTransport,
    storage,
    // Snapshots and restores in time slices: a whole-store one held the loop past the election timeout at
    // 100,000+ tasks (issue #18).
    stateMachine: scopedStateMachine(observedStateMachine(store.stateMachine(), obs)),
    ...(obs?.raftLog ? { logger: obs.raftLog } : {}),
    // Every command the store lets through (it refuses larger ones with a clear error), with room for the
    // leadership scope's header (proposeScoped): raft's own default, 1 MiB, failed transactions between the two.
    maxProposalBytes: DEFAULT_MAX_COMMAND_BYTES + 64,
    electionTimeoutMs: [300, 600],
    heartbeatIntervalMs: 60,
    // A leader steps down only after a quorum was silent for a whole CheckQuorum window of 3 s (so between 3
    // and 6 s). With the election timeout's 300 ms a follower's stall of a few hundred ms (mostly a wait for
    // one of two shared cores while a dead manager's nodes register) deposed the leader of a two-manager
    // quorum, and a leader kill ran 2 to 7 elections (issue #18); on a loaded machine such stalls reach 1-2.3 s.
    // The window decides nothing else: a dead leader is still replaced after the followers' election timeout
    // (300-600 ms), and a stalled leader is not (it ignores their votes while it leads); lease reads still
    // count acknowledgements within 300 ms; a leader cut off from the others commits nothing meanwhile, and
    // its duties' writes are scoped to its term. (swarmkit's CheckQuorum waits ElectionTick 10 x 1 s; etcd's
    // one to two election timeouts.)
    checkQuorumMs: 3000,
    ...(options.snapshotInterval ? { snapshotThreshold: options.snapshotInterval } : {}),
    ...(options.forceNewCluster ? { forceNewCluster: true } : {}),
  })
  raft = node
  return { storage, store, raft: node, raftTransport }
}
