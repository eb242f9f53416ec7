// The main job. Until the packages land it lists them; it grows into the reference-cluster demo.
import { readdirSync, readFileSync } from 'node:fs'

for (const name of readdirSync(new URL('../packages', import.meta.url)).sort()) {
  const pkg = JSON.parse(readFileSync(new URL(`../packages/${name}/package.json`, import.meta.url), 'utf8'))
  const mod = await import(pkg.name)
  console.log(`${pkg.name}: ${Object.keys(mod).length} exports`)
}
