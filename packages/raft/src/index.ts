/**
 * @packageDocumentation
 * @swarmkit/raft — work in progress; see README.md.
 */
export const PACKAGE_NAME = '@swarmkit/raft'
