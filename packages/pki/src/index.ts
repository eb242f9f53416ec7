/**
 * @packageDocumentation
 * @swarmkit/pki — work in progress; see README.md.
 */
export const PACKAGE_NAME = '@swarmkit/pki'
