// One-off generator for package boilerplate; kept so new packages get the same shape.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'

const [name, deps = '', testing = ''] = process.argv.slice(2)
const dir = `packages/${name}`
mkdirSync(`${dir}/src`, { recursive: true })
const entry = (sub) => ({
  '@swarmkit/source': `./src/${sub}.ts`,
  types: `./dist/${sub}.d.ts`,
  import: `./dist/${sub}.js`,
})
const exportsMap = { '.': entry('index') }
if (testing) exportsMap['./testing'] = entry('testing/index')
const dependencies = {}
for (const d of deps.split(',').filter(Boolean)) dependencies[d] = d.startsWith('@swarmkit/') ? '0.1.0' : '*'
const pkg = {
  name: `@swarmkit/${name}`,
  version: '0.1.0',
  description: '',
  license: 'Apache-2.0',
  type: 'module',
  engines: { node: '>=20.19' },
  exports: exportsMap,
  files: ['dist', 'src', 'README.md'],
  sideEffects: false,
  scripts: { build: 'tsup' },
  dependencies,
  ...(testing
    ? { peerDependencies: { vitest: '>=4' }, peerDependenciesMeta: { vitest: { optional: true } } }
    : {}),
}
writeFileSync(`${dir}/package.json`, JSON.stringify(pkg, null, 2) + '\n')
const entries = testing ? `['src/index.ts', 'src/testing/index.ts']` : `['src/index.ts']`
writeFileSync(
  `${dir}/tsup.config.ts`,
  `import { packageBuild } from '../../tsup.package.js'

export default packageBuild(${entries})
`,
)
if (!existsSync(`${dir}/tsconfig.json`))
  writeFileSync(
    `${dir}/tsconfig.json`,
    JSON.stringify({ extends: '../../tsconfig.base.json', include: ['src'] }, null, 2) + '\n',
  )
