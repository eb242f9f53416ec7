import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

describe('README', () => {
  it('runs its example', async () => {
    const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8')
    const code = /```ts\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf('## Example')))![1]!
    // Strip the types (esbuild) and the imports, then run it with the real modules in scope.
    const transport = await import('@swarmkit/transport')
    const raft = await import('../src/index.js')
    const { transform } = await import('esbuild')
    const js = (await transform(code.replace(/^import .*$/gm, ''), { loader: 'ts' })).code
    const logs: unknown[] = []
    const console = { log: (...a: unknown[]) => logs.push(a.join(' ')) }
    const run = new Function(
      'MemoryNetwork',
      'MemoryLogStorage',
      'RaftNode',
      'console',
      `return (async () => {${js}})()`,
    )
    await run(transport.MemoryNetwork, raft.MemoryLogStorage, raft.RaftNode, console)
    expect(logs).toContain('blue')
    expect(logs.some((l) => String(l).startsWith('committed at 2 in term 1'))).toBe(true)
  })
})
