import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'

// What `npx @swarmkit/cluster` gets once published: the packed tarball (with the swarmkit packages it depends
// on packed beside it, as the registry would serve them) installed into a scratch project outside the
// workspace, its other dependencies from npm's cache where it has them, and its command run from there. Needs
// `npm run build` first, as the tarballs ship dist/. Not `--offline`: after `npm ci` on a fresh machine the
// cache holds the dependencies' tarballs but not the registry's metadata that `npm install` asks for
// (ENOTCACHED for eventemitter3 on session 11's new machine).

const run = promisify(execFile)
const root = join(import.meta.dirname, '..')
const clusterDir = join(root, 'examples', 'cluster')
const pkg = JSON.parse(readFileSync(join(clusterDir, 'package.json'), 'utf8'))
const scratch = mkdtempSync(join(tmpdir(), 'swarmkit-cluster-pack-'))
const STEP_MS = 120_000

afterAll(() => rmSync(scratch, { recursive: true, force: true }))

interface PackResult {
  filename: string
  files: { path: string }[]
}

async function pack(dir: string, dryRun = false): Promise<PackResult> {
  const args = ['pack', '--json', '--pack-destination', scratch, ...(dryRun ? ['--dry-run'] : [])]
  const { stdout } = await run('npm', args, { cwd: dir, timeout: STEP_MS })
  return (JSON.parse(stdout) as PackResult[])[0]!
}

describe('@swarmkit/cluster as published', () => {
  it('packs dist (library, command and browser view), README and LICENSE, and no tests', async () => {
    expect(existsSync(join(clusterDir, 'dist', 'cli.js')), 'examples/cluster/dist: run npm run build').toBe(
      true,
    )
    const files = (await pack(clusterDir, true)).files.map((f) => f.path)
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'LICENSE',
        'dist/cli.js',
        'dist/index.js',
        'dist/index.d.ts',
        'dist/ui/app.js',
        'dist/ui/app.css',
      ]),
    )
    expect(files.filter((f) => /(^|\/)test\/|\.test\.ts$/.test(f))).toEqual([])
  })

  it(
    'installs from its tarball offline and runs swarmkit-cluster --help, also through npx',
    async () => {
      const deps = Object.keys(pkg.dependencies).filter((d) => d.startsWith('@swarmkit/'))
      const dirs = [...deps.map((d) => join(root, 'packages', d.slice('@swarmkit/'.length))), clusterDir]
      const tarballs = (await Promise.all(dirs.map((dir) => pack(dir)))).map((p) => join(scratch, p.filename))
      writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'scratch', private: true }))
      await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--silent', ...tarballs], {
        cwd: scratch,
        timeout: STEP_MS,
      })

      const bin = join(scratch, 'node_modules', '.bin', 'swarmkit-cluster')
      const direct = await run(bin, ['--help'], { cwd: scratch, timeout: STEP_MS })
      expect(direct.stdout).toMatch(/^usage: swarmkit-cluster --state-dir DIR/)
      expect(direct.stdout).toContain('--engine-addr')

      const npx = await run('npx', ['--offline', '@swarmkit/cluster', '--help'], {
        cwd: scratch,
        timeout: STEP_MS,
      })
      expect(npx.stdout).toBe(direct.stdout)
    },
    5 * STEP_MS,
  )
})
