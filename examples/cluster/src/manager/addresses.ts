// Where a manager is reached, kept in its node object: the join address (`docker swarm join-token` shows it,
// workers fail over to it), and the control and raft addresses other managers dial.

import type { Tx } from '@swarmkit/store'
import { CONTROL_ADDR_LABEL, RAFT_ADDR_LABEL } from '../labels.js'

/** Writes `addresses` into manager `nodeId`'s node object in `tx`, unless it holds them already. */
export function recordAddresses(
  tx: Tx,
  nodeId: string,
  addresses: { join: string; control: string; raft: string },
): void {
  const n = tx.get('nodes', nodeId)
  if (!n?.managerStatus || !n.description) return
  const labels = n.description.engine.labels
  const raftAddr = addresses.raft
  if (
    n.managerStatus.addr === addresses.join &&
    labels[CONTROL_ADDR_LABEL] === addresses.control &&
    labels[RAFT_ADDR_LABEL] === raftAddr
  )
    return
  tx.update('nodes', {
    ...n,
    managerStatus: { ...n.managerStatus, addr: addresses.join },
    description: {
      ...n.description,
      engine: {
        ...n.description.engine,
        labels: { ...labels, [CONTROL_ADDR_LABEL]: addresses.control, [RAFT_ADDR_LABEL]: raftAddr },
      },
    },
  })
}
