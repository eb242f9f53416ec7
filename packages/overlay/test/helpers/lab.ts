// A throwaway lab of network namespaces for the kernel tests: an underlay bridge in its own namespace and
// N "hosts" on it (198.18.0.0/15 addresses, used only inside these namespaces). Every name starts with a
// random per-run tag so concurrent runs never collide; teardown deletes everything with the tag and
// checks that nothing is left.
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createUnderlayHosts } from '../../../../test/support/underlay-hosts.js'
import { checkLinuxDriver } from '../../src/index.js'

export function sh(
  file: string,
  args: string[],
  timeout = 20_000,
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      const code = err
        ? typeof (err as { code?: unknown }).code === 'number'
          ? (err as { code: number }).code
          : 1
        : 0
      resolve({ code, out: String(stdout), err: String(stderr) })
    })
  })
}

export async function must(file: string, args: string[]): Promise<string> {
  const r = await sh(file, args)
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} failed (${r.code}): ${r.err.trim()}`)
  return r.out
}

/** Why the kernel tests cannot run here, or undefined when they can. */
export async function kernelUnavailable(): Promise<string | undefined> {
  try {
    await checkLinuxDriver()
  } catch (err) {
    return (err as Error).message
  }
  const ping = await sh('ping', ['-V'])
  if (ping.code !== 0) return '`ping` is not installed (apt-get install iputils-ping)'
  // Creating a namespace is the real test (containers may forbid it even to root).
  const probe = `kp${randomBytes(3).toString('hex')}`
  const r = await sh('ip', ['netns', 'add', probe])
  if (r.code !== 0) return `cannot create a network namespace: ${r.err.trim()}`
  await sh('ip', ['netns', 'del', probe])
  return undefined
}

/** A node process started in a namespace: its `ready` line and everything it printed so far. */
export interface Spawned {
  child: ChildProcess
  line: string
  output: () => string
}

export class Lab {
  /** 4 characters: a letter and 3 random base-36 digits. */
  readonly tag = `k${randomBytes(4).readUInt32BE(0).toString(36).slice(-3).padStart(3, '0')}`
  readonly underlay = `${this.tag}-u`
  readonly hosts: Array<{ ns: string; vtep: string; prefix: string }> = []
  private readonly children = new Set<ChildProcess>()

  async create(hosts: number): Promise<void> {
    const made = await createUnderlayHosts(must, this.underlay, this.tag, hosts)
    for (const [k, { ns, address: vtep }] of made.entries()) {
      const i = k + 1
      this.hosts.push({ ns, vtep, prefix: `${this.tag}${i}` })
    }
  }

  /** Starts `node -e script` inside a namespace; resolves once it prints a line starting with `ready`. */
  node(ns: string, script: string, args: string[] = []): Promise<Spawned> {
    return this.spawnNode(ns, ['-e', script, ...args])
  }

  /** Starts node with these arguments inside a namespace; resolves once it prints a `ready` line. */
  async spawnNode(ns: string, nodeArgs: string[]): Promise<Spawned> {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...nodeArgs], {
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    this.children.add(child)
    child.on('exit', () => this.children.delete(child))
    let err = ''
    child.stderr!.on('data', (d) => (err += d))
    // Everything it prints, kept from the start: what follows `ready` may come in the same chunk.
    let all = ''
    child.stdout!.on('data', (d) => (all += d))
    const line = await new Promise<string>((resolve, reject) => {
      let buf = ''
      child.stdout!.on('data', (d) => {
        buf += d
        const m = /^ready.*$/m.exec(buf)
        if (m) resolve(m[0])
      })
      child.on('exit', (code) => reject(new Error(`child in ${ns} exited (${code}) before ready: ${err}`)))
    })
    return { child, line, output: () => all }
  }

  /** Runs a short node script in a namespace to completion and returns its stdout. */
  async script(
    ns: string,
    script: string,
    args: string[] = [],
  ): Promise<{ code: number; out: string; err: string }> {
    return sh('ip', ['netns', 'exec', ns, process.execPath, '-e', script, ...args], 30_000)
  }

  async kill(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((r) => child.once('exit', r))
    child.kill('SIGKILL')
    await exited
  }

  async killAll(): Promise<void> {
    for (const c of [...this.children]) await this.kill(c)
  }

  /** Kills the children, deletes every namespace with the tag, and returns what is left (should be nothing). */
  async destroy(): Promise<string[]> {
    await this.killAll()
    const list = async () =>
      (await must('ip', ['netns', 'list']))
        .split('\n')
        .map((l) => l.split(' ')[0]!)
        .filter((n) => n.startsWith(this.tag))
    for (const n of await list()) await sh('ip', ['netns', 'del', n])
    const links = (await must('ip', ['-o', 'link', 'show']))
      .split('\n')
      .map((l) => l.split(': ')[1]?.split('@')[0] ?? '')
      .filter((n) => n.startsWith(this.tag))
    return [...(await list()), ...links]
  }
}
