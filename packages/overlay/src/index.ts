/**
 * @packageDocumentation
 * @swarmkit/overlay — work in progress; see README.md.
 */
export const PACKAGE_NAME = '@swarmkit/overlay'
