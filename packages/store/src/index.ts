/**
 * @packageDocumentation
 * @swarmkit/store — work in progress; see README.md.
 */
export const PACKAGE_NAME = '@swarmkit/store'
