// The README's example runs: bundled from the README text with the memory driver in place of the Linux one
// and the mesh on a free loopback port.
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'esbuild'
import { expect, it } from 'vitest'
import { sh } from './helpers/lab.js'
import { freePort } from './helpers/net.js'

it('runs the README example', async () => {
  const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8')
  const code = /```ts\n([\s\S]*?)```/.exec(readme)![1]!
  const port = await freePort('127.0.0.2')
  const src = join(import.meta.dirname, '..', 'src', 'index.ts')
  const edited = code
    .replace("from '@swarmkit/overlay'", `from ${JSON.stringify(src)}`)
    .replace('import { ipam, linuxDriver,', 'import { ipam, memoryDriver as linuxDriver,')
    .replace("routingMesh({ host: '192.0.2.10' })", "routingMesh({ host: '127.0.0.2' })")
    .replace('publishedPort: port!.publishedPort!', `publishedPort: ${port}`)
  expect(edited).not.toBe(code)
  const dir = tmpdir()
  const entry = join(dir, `overlay-readme-${process.pid}.ts`)
  const out = join(dir, `overlay-readme-${process.pid}.mjs`)
  writeFileSync(entry, edited)
  try {
    await build({
      entryPoints: [entry],
      outfile: out,
      bundle: true,
      platform: 'node',
      format: 'esm',
      logLevel: 'silent',
    })
    const r = await sh(process.execPath, [out])
    expect(r.err).toBe('')
    expect(r.out.trim()).toMatch(/^10\.0\.0\.2 3$/)
  } finally {
    rmSync(entry, { force: true })
    rmSync(out, { force: true })
  }
})
