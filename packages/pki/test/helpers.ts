import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sha256 } from '@noble/hashes/sha2.js'
import { mulberry32 } from '../../../test/support/mulberry32.js'

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

/** A seeded uniform [0, 1) generator (mulberry32, shared by the test suites). */
export const seededFloat = mulberry32

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

/** A manual clock: timers fire only when the test advances time. */
export class FakeClock {
  time: number
  #timers: { at: number; seq: number; fn: () => void }[] = []
  #seq = 0
  constructor(start: number) {
    this.time = start
  }
  now = (): number => this.time
  setTimeout = (fn: () => void, ms: number): unknown => {
    const t = { at: this.time + Math.max(0, ms), seq: this.#seq++, fn }
    this.#timers.push(t)
    return t
  }
  clearTimeout = (h: unknown): void => {
    this.#timers = this.#timers.filter((t) => t !== h)
  }
  get pending(): number {
    return this.#timers.length
  }
  /** Moves time forward to `until`, firing due timers in order and letting promises settle between them. */
  async advanceTo(until: number): Promise<void> {
    for (;;) {
      await settle()
      this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq)
      const next = this.#timers[0]
      if (!next || next.at > until) break
      this.#timers.shift()
      this.time = next.at
      next.fn()
    }
    this.time = until
    await settle()
  }
}

/** Lets pending promise callbacks run (a macrotask turn). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}
