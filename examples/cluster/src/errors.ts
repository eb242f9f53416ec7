/** An Engine API error: the HTTP status and the message the docker CLI prints after "Error response from daemon:". */
export class ApiError extends Error {
  override readonly name = 'ApiError'
  constructor(
    readonly status: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

/** The daemon's own words (moby `daemon/cluster/errors.go`). */
export const MESSAGES = {
  notInSwarm:
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.',
  worker:
    "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.",
  alreadyInSwarm:
    'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.',
  locked:
    'Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm unlock" to unlock it.',
  notPartOfSwarm: 'This node is not part of a swarm',
  outOfSequence: 'rpc error: code = Unknown desc = update out of sequence',
  noLeader:
    "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.",
} as const
