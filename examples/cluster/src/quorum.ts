// Answers around the raft quorum, as moby gives them: cluster state is read and written through the leader
// (swarmkit's raft proxy), so a manager without one refuses with "The swarm does not have a leader…"; and
// `docker swarm leave` on a manager warns by how many reachable managers would be left (daemon/cluster).

import { ApiError, MESSAGES } from './errors.js'
import type { Manager } from './manager.js'

/** Engine API paths a node answers by itself, with or without a leader. */
const LOCAL_PATHS = /^\/(?:_ping|version|info|swarm\/(?:init|join|leave|unlock))$/

/** How long a request waits for an election in progress before it is refused. */
const LEADER_WAIT_MS = 2000

/**
 * Resolves once manager `m` knows a leader; refuses with moby's no-leader error when none is known within
 * `waitMs` (an election takes well under that). Paths the node answers itself pass at once.
 */
export async function requireLeader(
  m: Manager | undefined,
  path: string,
  waitMs = LEADER_WAIT_MS,
): Promise<void> {
  if (!m || LOCAL_PATHS.test(path) || m.raft.leaderId !== null) return
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer)
      m.raft.off('leader:change', onChange)
      resolve()
    }
    const onChange = (leader: string | null) => {
      if (leader !== null) done()
    }
    const timer = setTimeout(done, waitMs)
    m.raft.on('leader:change', onChange)
  })
  if (m.raft.leaderId === null) throw new ApiError(503, MESSAGES.noLeader)
}

const ATTEMPTING = 'You are attempting to leave the swarm on a node that is participating as a manager. '
const RESTORE =
  'The only way to restore a swarm that has lost consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to suppress this message.'

/**
 * Why `docker swarm leave` without `--force` is refused on this node (moby's words), or undefined when it
 * may leave: a locked node, or any manager. The counts are the managers' reachability as the leader recorded
 * it; without a leader they are unknown and only the general warning is given.
 */
export function leaveRefusal(state: { locked: boolean; manager: Manager | undefined }): string | undefined {
  if (state.locked)
    return 'Swarm is encrypted and locked. Please unlock it first or use `--force` to ignore this message.'
  const m = state.manager
  if (!m) return undefined
  let msg = ATTEMPTING
  if (m.raft.leaderId !== null) {
    const { current, reachable, unreachable } = m.store.view((tx) => {
      let reachable = 0
      let unreachable = 0
      let current = false
      for (const n of tx.find('nodes')) {
        if (n.managerStatus?.reachability === 'reachable') {
          reachable++
          if (n.id === m.nodeId) current = true
        } else if (n.managerStatus?.reachability === 'unreachable') unreachable++
      }
      return { current, reachable, unreachable }
    })
    // moby: removingManagerCausesLossOfQuorum and isLastManager (daemon/cluster/utils.go).
    if (current && reachable - 2 <= unreachable) {
      if (reachable === 1 && unreachable === 0)
        return `${msg}Removing the last manager erases all current state of the swarm. Use \`--force\` to ignore this message. `
      msg += `Removing this node leaves ${reachable - 1} managers out of ${reachable + unreachable}. Without a Raft quorum your swarm will be inaccessible. `
    }
  }
  return msg + RESTORE
}
