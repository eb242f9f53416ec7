// The README's example is run as written (with the package import pointed at the source), so it stays true.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const dir = mkdtempSync(join(tmpdir(), 'pki-readme-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('README', () => {
  it('runs its example: a worker joins and talks mutual TLS 1.3 to the manager', async () => {
    const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8')
    const code = /```ts\n([\s\S]*?)```/.exec(readme)![1]!
    const src = join(import.meta.dirname, '..', 'src', 'index.ts')
    const lines: unknown[][] = []
    const g = globalThis as { __readmeLog?: (...a: unknown[]) => void }
    g.__readmeLog = (...a) => lines.push(a)
    const file = join(dir, 'example.ts')
    const body = code.replace("'@swarmkit/pki'", JSON.stringify(src))
    const importsEnd = body.lastIndexOf('\nimport ')
    const cut = body.indexOf('\n', importsEnd + 1)
    writeFileSync(
      file,
      `${body.slice(0, cut)}\nconst console = { log: (globalThis as any).__readmeLog }\n${body.slice(cut)}`,
    )
    await import(/* @vite-ignore */ file)
    for (let i = 0; i < 500 && lines.length < 2; i++) await new Promise((r) => setTimeout(r, 10))
    expect(lines).toHaveLength(2)
    const identity = lines[0]![0] as { nodeId: string; role: string }
    expect(identity.role).toBe('swarm-worker')
    expect(lines[1]).toEqual([`hello ${identity.nodeId}`, 'TLSv1.3'])
  })
})
