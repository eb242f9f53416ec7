// Engine and task labels in which the cluster records addresses that swarm's own objects have no field for.

/** Engine label in which a manager records where its control server (dispatcher) listens. */
export const CONTROL_ADDR_LABEL = 'com.swarmkit.control-addr'
/** Engine label in which a manager (or a node being promoted) records where its raft listener is. */
export const RAFT_ADDR_LABEL = 'com.swarmkit.raft-addr'
/** Task label holding where a running task answers (`address:port`), as its agent reported it. */
export const ENDPOINT_LABEL = 'com.swarmkit.task.endpoint'
/**
 * Task label holding where each published target port of a running task answers for the userspace mesh,
 * on the endpoint's address: `tcp/80=34567,udp/53=40001` (protocol/target port = port on the node).
 */
export const ENDPOINTS_LABEL = 'com.swarmkit.task.endpoints'
