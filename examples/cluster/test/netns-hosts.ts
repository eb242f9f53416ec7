// Hosts on one machine for the overlay tests: each host a network namespace the test makes (a veth to a
// bridge in an underlay namespace the test also makes; 198.18.0.0/15, used only inside them), running its
// own private dockerd (own socket, data root and exec root, no iptables, no bridge, pulls sent to a closed
// loopback proxy) and a swarmkit node (`ip netns exec`) whose Engine API is a unix socket, so the docker
// CLI reaches it from the root namespace. Every name starts with a random tag; `destroy()` (also run on
// SIGINT/SIGTERM) stops every process it started, by PID, and deletes what it made.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createUnderlayHosts } from '../../../test/support/underlay-hosts.js'

// The node's CLI; SWARMKIT_CLUSTER_CLI names it where this file is bundled elsewhere (bench/overlay-cluster).
const cli = () =>
  process.env.SWARMKIT_CLUSTER_CLI ?? fileURLToPath(new URL('../dist/cli.js', import.meta.url))

export interface CmdResult {
  code: number
  stdout: string
  stderr: string
}

export function sh(file: string, args: string[], timeout = 30_000): Promise<CmdResult> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      resolve({
        code: err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : 1
          : 0,
        stdout: String(stdout),
        stderr: String(stderr),
      }),
    )
  })
}

async function must(file: string, args: string[], timeout?: number): Promise<string> {
  const r = await sh(file, args, timeout)
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`)
  return r.stdout
}

/** Why these tests cannot run here (undefined when they can). */
export async function hostsUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'needs Linux'
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, dockerd)'
  for (const [tool, args, pkg] of [
    ['ip', ['-V'], 'iproute2'],
    ['nft', ['--version'], 'nftables'],
    ['dockerd', ['--version'], 'docker.io'],
    ['docker', ['--version'], 'the docker CLI'],
    ['/usr/bin/busybox', ['true'], 'busybox-static'],
    ['nsenter', ['--version'], 'util-linux'],
  ] as const) {
    if ((await sh(tool, [...args])).code !== 0) return `\`${tool}\` did not run (install ${pkg})`
  }
  if (!existsSync(cli())) return `${cli()} is missing (npm run build)`
  const probe = `op${randomBytes(3).toString('hex')}`
  const r = await sh('ip', ['netns', 'add', probe])
  if (r.code !== 0) return `cannot create a network namespace: ${r.stderr.trim()}`
  const vx = await sh('ip', [
    '-n',
    probe,
    'link',
    'add',
    'vx0',
    'type',
    'vxlan',
    'id',
    '4097',
    'dstport',
    '4789',
  ])
  await sh('ip', ['netns', 'del', probe])
  if (vx.code !== 0) return `the kernel cannot make VXLAN devices: ${vx.stderr.trim()}`
  return undefined
}

/** Why this kernel cannot make an ESP state with rfc4106(gcm(aes)) (tried in a scratch namespace), or undefined. */
export async function kernelCannotSeal(): Promise<string | undefined> {
  const probe = `op${randomBytes(3).toString('hex')}`
  await must('ip', ['netns', 'add', probe])
  try {
    const r = await sh('ip', [
      '-n',
      probe,
      ...'xfrm state add src 127.0.0.1 dst 127.0.0.2 proto esp spi 0x1001 reqid 1 mode transport aead rfc4106(gcm(aes))'.split(
        ' ',
      ),
      `0x${'11'.repeat(20)}`,
      '128',
    ])
    return r.code === 0 ? undefined : r.stderr.trim()
  } finally {
    await sh('ip', ['netns', 'del', probe])
  }
}

export interface Host {
  readonly name: string
  readonly ns: string
  /** Its underlay address (the node's advertise and listen address). */
  readonly addr: string
  readonly dir: string
  /** `unix://` address of its dockerd. */
  readonly engine: string
  /** `unix://` address of its swarmkit node's Engine API. */
  readonly api: string
  dockerd?: ChildProcess
  node?: ChildProcess
  nodeId?: string
}

export class NetnsHosts {
  /** 4 characters: `q` and 3 random base-36 digits. */
  readonly tag = `q${randomBytes(4).readUInt32BE(0).toString(36).slice(-3).padStart(3, '0')}`
  readonly underlay = `${this.tag}-u`
  readonly root = join(tmpdir(), `swarmkit-hosts-${this.tag}`)
  readonly hosts: Host[] = []
  /** Extra namespace-name prefixes to delete at the end (the nodes' task sandboxes). */
  readonly sandboxPrefixes = new Set<string>()
  readonly #children = new Set<ChildProcess>()
  readonly #onSignal = () => {
    this.destroySync()
    process.exit(130)
  }

  constructor() {
    process.once('SIGINT', this.#onSignal)
    process.once('SIGTERM', this.#onSignal)
  }

  async create(n: number): Promise<void> {
    mkdirSync(this.root, { recursive: true })
    const made = await createUnderlayHosts(must, this.underlay, this.tag, n)
    for (const [k, { ns, address: addr }] of made.entries()) {
      const i = k + 1
      // Processes in the host resolve through nothing outside it (`ip netns exec` mounts this file).
      mkdirSync(`/etc/netns/${ns}`, { recursive: true })
      writeFileSync(`/etc/netns/${ns}/resolv.conf`, 'nameserver 127.0.0.1\n')
      const dir = join(this.root, `h${i}`)
      mkdirSync(dir, { recursive: true })
      this.hosts.push({
        name: `h${i}`,
        ns,
        addr,
        dir,
        engine: `unix://${join(dir, 'docker.sock')}`,
        api: `unix://${join(dir, 'api.sock')}`,
      })
    }
  }

  // dockerd enters only the network namespace (nsenter): `ip netns exec` also mounts a fresh /sys, which
  // hides the cgroup hierarchy dockerd needs. The node runs under `ip netns exec`, with /etc/netns files.
  #spawn(
    h: Host,
    args: string[],
    env: Record<string, string>,
    logName: string,
    netOnly = false,
  ): ChildProcess {
    const out = openSync(join(h.dir, logName), 'a')
    const enter = netOnly ? ['nsenter', `--net=/var/run/netns/${h.ns}`, '--'] : ['ip', 'netns', 'exec', h.ns]
    const child = spawn(enter[0]!, [...enter.slice(1), ...args], {
      stdio: ['ignore', out, out],
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env },
    })
    this.#children.add(child)
    child.on('exit', () => this.#children.delete(child))
    return child
  }

  /** Starts the host's private dockerd and waits until it answers. */
  async startDockerd(h: Host): Promise<void> {
    h.dockerd = this.#spawn(
      h,
      [
        'dockerd',
        '--host',
        h.engine,
        '--data-root',
        join(h.dir, 'docker-root'),
        '--exec-root',
        join(h.dir, 'docker-exec'),
        '--pidfile',
        join(h.dir, 'docker.pid'),
        '--iptables=false',
        '--ip-forward=false',
        '--ip-masq=false',
        '--bridge=none',
      ],
      { HTTP_PROXY: 'http://127.0.0.1:9', HTTPS_PROXY: 'http://127.0.0.1:9', NO_PROXY: '' },
      'dockerd.log',
      true,
    )
    await this.until(
      `dockerd of ${h.name}`,
      async () => (await this.engine(h, ['version'])).code === 0,
      90_000,
    )
  }

  /** Starts the host's swarmkit node on its dockerd; waits until its Engine API answers. */
  async startNode(h: Host): Promise<void> {
    h.node = this.#spawn(
      h,
      [
        process.execPath,
        cli(),
        '--state-dir',
        join(h.dir, 'state'),
        '--api',
        join(h.dir, 'api.sock'),
        '--hostname',
        h.name,
        '--listen-addr',
        `${h.addr}:2377`,
        '--engine-addr',
        h.engine,
      ],
      {},
      'node.log',
    )
    await this.until(
      `the node of ${h.name}`,
      async () => (await this.docker(h, ['version'])).code === 0,
      60_000,
    )
  }

  /** The docker CLI (root namespace) against the host's swarmkit node. */
  docker(h: Host, args: string[], timeout = 60_000): Promise<CmdResult> {
    return sh('docker', ['-H', h.api, ...args], timeout)
  }

  /** The docker CLI against the host's own dockerd. */
  engine(h: Host, args: string[], timeout = 60_000): Promise<CmdResult> {
    return sh('docker', ['-H', h.engine, ...args], timeout)
  }

  /** Runs a command in the host's namespace (not in a container). */
  inHost(h: Host, args: string[], timeout = 30_000): Promise<CmdResult> {
    return sh('ip', ['netns', 'exec', h.ns, ...args], timeout)
  }

  async until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
    const end = Date.now() + timeoutMs
    for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
      if (await check().catch(() => false)) return
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
      await new Promise((r) => setTimeout(r, delay))
    }
  }

  async #stop(child: ChildProcess | undefined, graceMs: number): Promise<void> {
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((r) => child.once('exit', r))
    child.kill('SIGTERM')
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs)
    await exited
    clearTimeout(t)
  }

  /** Stops the nodes, removes their containers, stops the dockerds, deletes namespaces, links and files. */
  async destroy(): Promise<string[]> {
    process.off('SIGINT', this.#onSignal)
    process.off('SIGTERM', this.#onSignal)
    for (const h of this.hosts) await this.#stop(h.node, 15_000)
    for (const h of this.hosts) {
      if (!h.dockerd || h.dockerd.exitCode !== null) continue
      const ids = (await this.engine(h, ['ps', '-aq'])).stdout.split('\n').filter(Boolean)
      if (ids.length > 0) await this.engine(h, ['rm', '-f', '-v', ...ids], 120_000)
      await this.#stop(h.dockerd, 30_000)
    }
    return this.#cleanup()
  }

  /** What a signal can still do: kill by PID, delete namespaces. */
  destroySync(): void {
    for (const c of this.#children) c.kill('SIGKILL')
    for (const name of this.#namespaces()) {
      try {
        execFileSync('ip', ['netns', 'del', name])
      } catch {}
    }
    for (const h of this.hosts) rmSync(`/etc/netns/${h.ns}`, { recursive: true, force: true })
  }

  #namespaces(): string[] {
    let out = ''
    try {
      out = execFileSync('ip', ['netns', 'list']).toString()
    } catch {}
    const prefixes = [this.tag, ...[...this.sandboxPrefixes].map((p) => `${p}-`)]
    return out
      .split('\n')
      .map((l) => l.split(' ')[0]!)
      .filter((n) => n && prefixes.some((p) => n.startsWith(p)))
  }

  async #cleanup(): Promise<string[]> {
    for (const c of [...this.#children]) await this.#stop(c, 1000)
    for (const name of this.#namespaces()) await sh('ip', ['netns', 'del', name])
    for (const h of this.hosts) rmSync(`/etc/netns/${h.ns}`, { recursive: true, force: true })
    // dockerd unmounts its layers on a clean stop; a leftover mount keeps the directory (reported below).
    const mounts = (await sh('findmnt', ['-rn', '-o', 'TARGET'])).stdout
      .split('\n')
      .filter((m) => m.startsWith(this.root))
    for (const m of mounts.reverse()) await sh('umount', ['-l', m])
    // SWARMKIT_HOSTS_LOGS=DIR keeps each host's node and dockerd logs (for debugging a failed run).
    const keep = process.env.SWARMKIT_HOSTS_LOGS
    if (keep)
      for (const h of this.hosts)
        for (const f of ['node.log', 'dockerd.log'])
          if (existsSync(join(h.dir, f))) {
            mkdirSync(keep, { recursive: true })
            copyFileSync(join(h.dir, f), join(keep, `${this.tag}-${h.name}-${f}`))
          }
    rmSync(this.root, { recursive: true, force: true })
    return [...this.#namespaces(), ...mounts.map((m) => `mount ${m}`)]
  }
}
