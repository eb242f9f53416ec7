// What a user of the published packages gets: pack every package, install the tarballs into a scratch
// project outside the workspace, and import every entry point with plain Node (no source condition).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '..')
const scratch = mkdtempSync(join(tmpdir(), 'swarmkit-pack-'))
// Every package under packages/, and the reference cluster, published as @swarmkit/cluster.
const packages = [
  ...readdirSync(join(root, 'packages'))
    .sort()
    .map((name) => join('packages', name)),
  join('examples', 'cluster'),
]
const tarballs = []
const entries = []
for (const path of packages) {
  const dir = join(root, path)
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', scratch], {
    cwd: dir,
    encoding: 'utf8',
  })
  tarballs.push(join(scratch, out.trim().split('\n').pop()))
  for (const sub of Object.keys(pkg.exports)) {
    // testing entry points import vitest, an optional peer; check they resolve, import the rest.
    entries.push({
      spec: sub === '.' ? pkg.name : `${pkg.name}/${sub.slice(2)}`,
      importIt: !sub.includes('testing'),
    })
  }
}
writeFileSync(
  join(scratch, 'package.json'),
  JSON.stringify({ name: 'scratch', private: true, type: 'module' }),
)
execFileSync('npm', ['install', '--no-audit', '--no-fund', '--silent', ...tarballs], {
  cwd: scratch,
  stdio: 'inherit',
})
const script = entries
  .map(({ spec, importIt }) =>
    importIt
      ? `{ const m = await import('${spec}'); if (Object.keys(m).length === 0) throw new Error('${spec} exports nothing'); console.log('ok', '${spec}', Object.keys(m).length, 'exports') }`
      : `{ import.meta.resolve('${spec}'); console.log('ok', '${spec}', 'resolves') }`,
  )
  .join('\n')
writeFileSync(join(scratch, 'check.mjs'), script)
execFileSync(process.execPath, ['check.mjs'], { cwd: scratch, stdio: 'inherit' })
rmSync(scratch, { recursive: true, force: true })
console.log(`pack check passed for ${packages.length} packages`)
