// Runs the benchmarks: `npm run bench` runs every bench/<name>/index.ts, `npm run bench -- <name>` one.
// Each is bundled from source with esbuild (workspace packages through the @swarmkit/source condition,
// npm dependencies left external) and run in its own Node process, so one bench cannot skew another.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const here = dirname(fileURLToPath(import.meta.url))
const all = readdirSync(here, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(here, d.name, 'index.ts')))
  .map((d) => d.name)
  .sort()
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'))
for (const name of wanted) {
  if (!all.includes(name)) {
    console.error(`unknown benchmark "${name}"; have: ${all.join(', ')}`)
    process.exit(2)
  }
}
const outDir = join(here, '.out')
mkdirSync(outDir, { recursive: true })
let failed = 0
for (const name of wanted.length ? wanted : all) {
  const outfile = join(outDir, `${name}.mjs`)
  await build({
    entryPoints: [join(here, name, 'index.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['@swarmkit/source'],
    sourcemap: 'inline',
    logLevel: 'warning',
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
    plugins: [
      {
        name: 'external-npm',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path.startsWith('@swarmkit/') ? undefined : { path: args.path, external: true },
          )
        },
      },
    ],
  })
  console.log(`\n== bench/${name} ==`)
  const r = spawnSync(process.execPath, ['--expose-gc', outfile], { stdio: 'inherit', env: process.env })
  if (r.status !== 0) failed++
}
process.exit(failed ? 1 : 0)
