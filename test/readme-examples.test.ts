import { execFile } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'

// Every package README's example, run exactly as written: its first ```ts block under "## Example" is bundled
// with the package sources (third-party imports stay external), run as its own Node process, and must exit 0
// on its own within the time limit and print what the README says it prints.

const root = join(import.meta.dirname, '..')
const outDir = join(root, 'node_modules', '.readme-examples') // inside the repo, so externals resolve
const isRoot = process.getuid?.() === 0

/** What each example must print (a substring of stdout). */
const expected: Record<string, RegExp> = {
  transport: /got \{ term: 1 \}[\s\S]*\{ index: 12 \}[\s\S]*partitioned n2 from n1/,
  raft: /committed at 2 in term 1/,
  store: /replicas now 10[\s\S]*create [0-9a-z]{25} 3/,
  pki: /hello [0-9a-z]{25} TLSv1\.3/,
  scheduler: /east: 3, west: 3/,
  overlay: /reached 10\.20\.0\.\d+ from the task's sandbox[\s\S]*cleaned up/,
}

function exampleOf(pkg: string): string {
  const readme = readFileSync(join(root, 'packages', pkg, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Example'))
  const block = /```ts\n([\s\S]*?)```/.exec(section)
  if (!block) throw new Error(`packages/${pkg}/README.md has no ts example under "## Example"`)
  return block[1]!
}

async function bundle(pkg: string, code: string): Promise<string> {
  const result = await build({
    stdin: { contents: code, loader: 'ts', resolveDir: join(root, 'packages', pkg), sourcefile: 'README.ts' },
    bundle: true,
    write: false,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['@swarmkit/source'],
    logLevel: 'silent',
    plugins: [
      {
        name: 'third-party-external',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path.startsWith('@swarmkit/') ? undefined : { path: args.path, external: true },
          )
        },
      },
    ],
  })
  mkdirSync(outDir, { recursive: true })
  const file = join(outDir, `${pkg}.mjs`)
  writeFileSync(file, result.outputFiles[0]!.text)
  return file
}

function run(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [file],
      { timeout: 60_000, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}

describe('README examples, run as written', () => {
  for (const pkg of Object.keys(expected)) {
    const needsRoot = pkg === 'overlay'
    const skip = needsRoot && !isRoot && !process.env.SWARMKIT_CI
    it.skipIf(skip)(
      `@swarmkit/${pkg}: exits 0 by itself and prints what it promises`,
      async () => {
        const file = await bundle(pkg, exampleOf(pkg))
        const { code, stdout, stderr } = await run(file)
        expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' })
        expect(stdout).toMatch(expected[pkg]!)
      },
      90_000,
    )
  }
})
