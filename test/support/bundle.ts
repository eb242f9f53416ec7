// Tests that run TypeScript as a child process (crash writers, example CLIs) bundle it first: one esbuild
// call, from sources through the @swarmkit/source condition, so that no prior build is needed.
import { build } from 'esbuild'

/** Options of {@link bundleForNode}. */
export interface BundleOptions {
  /** Give the ESM bundle a `require` (for CommonJS dependencies bundled into it, such as msgpackr's). */
  readonly requireShim?: boolean
  readonly logLevel?: 'warning' | 'silent'
}

/** Bundles `entry` and what it imports into one ESM file at `outfile` that plain Node runs. */
export async function bundleForNode(
  entry: string,
  outfile: string,
  options: BundleOptions = {},
): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['@swarmkit/source'],
    logLevel: options.logLevel ?? 'warning',
    ...(options.requireShim
      ? {
          banner: {
            js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
          },
        }
      : {}),
  })
}
