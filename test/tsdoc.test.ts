import { join } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

// Every export of every package's public entry points carries a TSDoc comment (issue #17).
const root = join(import.meta.dirname, '..')
const entries: Record<string, string[]> = {
  transport: ['src/index.ts', 'src/testing/index.ts'],
  raft: ['src/index.ts', 'src/testing/index.ts'],
  store: ['src/index.ts'],
  pki: ['src/index.ts'],
  scheduler: ['src/index.ts', 'src/testing/index.ts'],
  overlay: ['src/index.ts', 'src/testing/index.ts'],
}

let program: ts.Program | undefined

/** One program over every entry point (type-checking each package separately costs several seconds each). */
function load(): ts.Program {
  const files = Object.entries(entries).flatMap(([name, list]) =>
    list.map((f) => join(root, 'packages', name, f)),
  )
  program ??= ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    customConditions: ['@swarmkit/source'],
    noEmit: true,
    skipLibCheck: true,
  })
  return program
}

function undocumented(files: string[]): string[] {
  const program = load()
  const checker = program.getTypeChecker()
  const missing: string[] = []
  for (const file of files) {
    const source = program.getSourceFile(file)
    if (!source) throw new Error(`cannot read ${file}`)
    const moduleSymbol = checker.getSymbolAtLocation(source)
    if (!moduleSymbol) continue
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported
      const documented = (symbol.declarations ?? []).some(
        (d) => ts.getJSDocCommentsAndTags(d).length > 0 || hasLeadingDoc(d),
      )
      if (!documented) missing.push(`${file.slice(root.length + 1)}: ${exported.name}`)
    }
  }
  return missing
}

/** A `/** … *\/` comment right before the declaration (or its variable statement). */
function hasLeadingDoc(node: ts.Node): boolean {
  const target = ts.isVariableDeclaration(node) ? node.parent.parent : node
  const text = target.getSourceFile().getFullText()
  const ranges = ts.getLeadingCommentRanges(text, target.getFullStart()) ?? []
  return ranges.some((r) => text.slice(r.pos, r.pos + 3) === '/**')
}

describe('TSDoc', () => {
  for (const [name, files] of Object.entries(entries)) {
    it(`documents every export of @swarmkit/${name}`, { timeout: 120_000 }, () => {
      const missing = undocumented(files.map((f) => join(root, 'packages', name, f)))
      // SWARMKIT_TSDOC_LIST=1 prints what lacks docs.
      if (process.env.SWARMKIT_TSDOC_LIST) console.log(`${name}: ${missing.length}\n${missing.join('\n')}`)
      expect(missing).toEqual([])
    })
  }
})
