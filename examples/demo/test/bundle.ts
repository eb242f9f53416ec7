import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bundleForNode } from '../../../test/support/bundle.js'

/**
 * Bundles an example's CLI from source into a temporary directory, so tests that run it as real processes need
 * no prior build. Returns the bundle's path and a cleanup.
 */
export async function bundleCli(entry: string): Promise<{ cli: string; remove: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'swarmkit-demo-test-'))
  const cli = join(dir, 'cli.mjs')
  await bundleForNode(entry, cli, { requireShim: true })
  return { cli, remove: () => rmSync(dir, { recursive: true, force: true }) }
}
