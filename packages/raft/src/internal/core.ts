// RaftCore is public API and lives in ../core.ts. This re-export keeps the driver's imports (node.ts, which is
// being split on another branch) working; import from '../core.js' in new code.
export * from '../core.js'
