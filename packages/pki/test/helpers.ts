import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sha256 } from '@noble/hashes/sha2.js'

/** Deterministic bytes from a seed (SHA-256 in counter mode), for reproducible tests. */
export function seededRandom(seed: number): (n: number) => Uint8Array {
  let counter = 0
  return (n) => {
    const out = new Uint8Array(n)
    for (let o = 0; o < n; o += 32) {
      const block = sha256(new TextEncoder().encode(`${seed}:${counter++}`))
      out.set(block.subarray(0, Math.min(32, n - o)), o)
    }
    return out
  }
}

/** A seeded uniform [0, 1) generator (mulberry32). */
export function seededFloat(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface OpenSslResult {
  status: number | null
  stdout: string
  stderr: string
}

/** Runs `openssl` in a fresh temp dir holding `files`; paths in args are relative to it. */
export function openssl(args: string[], files: Record<string, string | Uint8Array> = {}): OpenSslResult {
  const dir = mkdtempSync(join(tmpdir(), 'pki-openssl-'))
  try {
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content)
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8', timeout: 20_000 })
    return { status: r.status, stdout: r.stdout, stderr: r.stderr }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Runs openssl in a temp dir and returns the named output file's bytes. */
export function opensslMake(
  args: string[],
  files: Record<string, string | Uint8Array>,
  output: string,
): string {
  const dir = mkdtempSync(join(tmpdir(), 'pki-openssl-'))
  try {
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content)
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8', timeout: 20_000 })
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`)
    return spawnSync('cat', [join(dir, output)], { encoding: 'utf8' }).stdout
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
