// Node 20 exports an Ed25519 key as a JWK while holding the key's lock and allocating; a collection that then
// frees the finished generator job sharing that key takes the same lock, and the process hangs for good. It
// hung a worker host of bench/cluster-scale in the middle of a join storm. Generating many keys in a child
// process must finish: the old edGenerate (generateKeyPairSync, then export as a JWK) hung such a loop within
// seconds.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'

// The built package (npm run build), as a process of its own would load it.
const dist = join(import.meta.dirname, '..', 'dist', 'index.js')

const KEYS = 20_000

describe('generating many keys', () => {
  it(`generates ${KEYS} key pairs without hanging`, async () => {
    expect(existsSync(dist), 'packages/pki/dist: run npm run build').toBe(true)
    const script = `
      import { generateKeyPair } from ${JSON.stringify(pathToFileURL(dist).href)}
      for (let i = 0; i < ${KEYS}; i++) generateKeyPair()
      process.stdout.write('done')
    `
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    const code = await new Promise<number | null>((resolve) => {
      // A deadline, not a sleep: the loop takes about 2 s; a hung process never exits by itself.
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
      child.on('exit', (c) => {
        clearTimeout(timer)
        resolve(c)
      })
    })
    expect(err).toBe('')
    expect(code).toBe(0)
    expect(out).toBe('done')
  }, 90_000)
})
