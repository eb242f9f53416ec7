/**
 * @packageDocumentation
 * @swarmkit/scheduler — work in progress; see README.md.
 */
export const PACKAGE_NAME = '@swarmkit/scheduler'
