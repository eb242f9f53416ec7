/**
 * @packageDocumentation
 * @swarmkit/transport — work in progress; see README.md.
 */
export const PACKAGE_NAME = '@swarmkit/transport'
