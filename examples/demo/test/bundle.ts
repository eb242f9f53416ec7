import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'esbuild'

/**
 * Bundles an example's CLI from source into a temporary directory, so tests that run it as real processes need
 * no prior build. Returns the bundle's path and a cleanup.
 */
export async function bundleCli(entry: string): Promise<{ cli: string; remove: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'swarmkit-demo-test-'))
  const cli = join(dir, 'cli.mjs')
  await build({
    entryPoints: [entry],
    outfile: cli,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['@swarmkit/source'],
    logLevel: 'warning',
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
  })
  return { cli, remove: () => rmSync(dir, { recursive: true, force: true }) }
}
