/**
 * A connection that copies every frame of at most `connection[COPIES_FRAMES_UP_TO]` bytes before
 * `send` returns (the stream transports do, into their write buffer) lets the messaging layer encode
 * such frames into reused memory instead of a fresh buffer each.
 */
export const COPIES_FRAMES_UP_TO: unique symbol = Symbol('swarmkit.transport.copiesFramesUpTo')

export interface CopyingConnection {
  readonly [COPIES_FRAMES_UP_TO]?: number
}
