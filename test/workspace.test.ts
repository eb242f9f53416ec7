import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

// The dependency rules of docs/architecture.md, enforced on package.json and on every import in src/.
const allowed: Record<string, string[]> = {
  transport: [],
  pki: [],
  overlay: [],
  raft: ['transport'],
  store: ['raft'],
  scheduler: ['store'],
}

const root = join(import.meta.dirname, '..')
const packages = readdirSync(join(root, 'packages')).sort()

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sourceFiles(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : [],
  )
}

/** What every published package.json carries (issue #17): license and its file, registry metadata, entry points. */
function expectPublishable(pkg: Record<string, any>, dir: string, path: string): void {
  expect(pkg.private, 'private').toBeUndefined()
  expect(pkg.version).toMatch(/^\d+\.\d+\.\d+/)
  expect(pkg.license).toBe('Apache-2.0')
  expect(existsSync(join(dir, 'LICENSE'))).toBe(true)
  expect(pkg.keywords?.length).toBeGreaterThan(0)
  expect(pkg.homepage).toMatch(/^https:\/\//)
  expect(pkg.bugs?.url).toMatch(/^https:\/\//)
  expect(pkg.repository?.directory).toBe(path)
  expect(pkg.main).toBe(pkg.exports['.'].import)
  expect(pkg.types).toBe(pkg.exports['.'].types)
  expect(pkg.publishConfig?.access).toBe('public')
  expect(pkg.files).toEqual(expect.arrayContaining(['dist', 'README.md', 'LICENSE']))
  expect(
    pkg.files.some((f: string) => /(^|\/)test(\/|$)/.test(f)),
    'files ship no tests',
  ).toBe(false)
}

describe('workspace', () => {
  it('has exactly the planned packages', () => {
    expect(packages).toEqual(Object.keys(allowed).sort())
  })

  for (const name of packages) {
    describe(`@swarmkit/${name}`, () => {
      const dir = join(root, 'packages', name)
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))

      it('exports source first, then types and the built ESM', () => {
        expect(pkg.name).toBe(`@swarmkit/${name}`)
        for (const [sub, target] of Object.entries<Record<string, string>>(pkg.exports)) {
          expect(Object.keys(target), sub).toEqual(['@swarmkit/source', 'types', 'import'])
          expect(existsSync(join(dir, target['@swarmkit/source']!)), `${sub} source`).toBe(true)
        }
      })

      it('is ready to publish: license, metadata for registries and older resolvers, public access', () => {
        expectPublishable(pkg, dir, `packages/${name}`)
      })

      it('imports every third-party package it declares', () => {
        const code = sourceFiles(join(dir, 'src'))
          .map((file) => readFileSync(file, 'utf8'))
          .join('\n')
        for (const dep of Object.keys(pkg.dependencies ?? {}).filter((d) => !d.startsWith('@swarmkit/'))) {
          expect(code, `${dep} is declared but never imported`).toContain(`from '${dep}`)
        }
      })

      it('has a README with an example', () => {
        const readme = readFileSync(join(dir, 'README.md'), 'utf8')
        expect(readme).toMatch(/```(ts|typescript|js)/)
      })

      it('depends only on the swarmkit packages it may import', () => {
        const declared = Object.keys(pkg.dependencies ?? {})
          .filter((d) => d.startsWith('@swarmkit/'))
          .map((d) => d.slice('@swarmkit/'.length))
        for (const d of declared) expect(allowed[name], `package.json dependency ${d}`).toContain(d)
        for (const file of sourceFiles(join(dir, 'src'))) {
          // Comments may name any package (docs show usage); only code lines count.
          const code = readFileSync(file, 'utf8')
            .split('\n')
            .filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line))
            .join('\n')
          for (const m of code.matchAll(/from '@swarmkit\/([a-z]+)/g)) {
            if (m[1] === name) continue
            expect(allowed[name], `${file} imports @swarmkit/${m[1]}`).toContain(m[1])
            expect(declared, `${file} imports undeclared @swarmkit/${m[1]}`).toContain(m[1])
          }
        }
      })
    })
  }

  describe('@swarmkit/cluster (examples/cluster, published for npx)', () => {
    const dir = join(root, 'examples', 'cluster')
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))

    it('is named @swarmkit/cluster and exports source first, then types and the built ESM', () => {
      expect(pkg.name).toBe('@swarmkit/cluster')
      expect(Object.keys(pkg.exports['.'])).toEqual(['@swarmkit/source', 'types', 'import'])
      expect(existsSync(join(dir, pkg.exports['.']['@swarmkit/source']))).toBe(true)
    })

    it('is ready to publish: license, metadata for registries and older resolvers, public access', () => {
      expectPublishable(pkg, dir, 'examples/cluster')
    })

    it('has the swarmkit-cluster command, built from src/cli.ts with a node shebang', () => {
      expect(pkg.bin).toEqual({ 'swarmkit-cluster': './dist/cli.js' })
      expect(readFileSync(join(dir, 'src', 'cli.ts'), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true)
    })

    it('pins every swarmkit dependency to the version the workspace holds', () => {
      for (const [dep, version] of Object.entries<string>(pkg.dependencies)) {
        if (!dep.startsWith('@swarmkit/')) continue
        const other = JSON.parse(
          readFileSync(join(root, 'packages', dep.slice('@swarmkit/'.length), 'package.json'), 'utf8'),
        )
        expect(version, dep).toBe(other.version)
      }
    })

    it('imports every third-party package it declares', () => {
      const code = sourceFiles(join(dir, 'src'))
        .map((file) => readFileSync(file, 'utf8'))
        .join('\n')
      for (const dep of Object.keys(pkg.dependencies).filter((d) => !d.startsWith('@swarmkit/'))) {
        expect(code, `${dep} is declared but never imported`).toContain(`from '${dep}`)
      }
    })

    it('has a README that says how to run it with npx', () => {
      expect(readFileSync(join(dir, 'README.md'), 'utf8')).toContain('npx @swarmkit/cluster --state-dir')
    })
  })
})
