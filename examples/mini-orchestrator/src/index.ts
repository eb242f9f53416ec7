/**
 * A small orchestrator built from swarmkit's packages: managers that replicate the cluster store through raft
 * and reconcile services on the leader. The tutorial (`docs/tutorial.md`) walks through it.
 *
 * @packageDocumentation
 */
export { Manager, type ManagerOptions } from './manager.js'
export { runWalkthrough, type WalkthroughOptions, type WalkthroughReport } from './walkthrough.js'
