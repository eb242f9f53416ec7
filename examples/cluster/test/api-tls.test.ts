import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkApiExposure } from '../src/api-tls.js'
import { captureOutput, waitFor } from './helpers.js'
import { issueCert, makeCa, type PemFiles, probeHttps } from './openssl-certs.js'

// A private network namespace (`unshare -n`, root only) lets a test bind 0.0.0.0 and the default port 2375
// without exposing anything on the machine's own network.
const root = process.getuid?.() === 0
if (!root && process.env.SWARMKIT_CI)
  throw new Error('the API exposure tests need root for a private network namespace (unshare -n)')

/** Starts the CLI with `args` in a network namespace of its own; its output so far, and a docker CLI in it. */
function startIsolated(dir: string, args: string[]) {
  // (A new namespace's loopback starts down.)
  const child = spawn('unshare', [
    '-n',
    'sh',
    '-c',
    'ip link set lo up && exec "$@"',
    'sh',
    process.execPath,
    CLI,
    '--state-dir',
    dir,
    '--simulated',
    ...args,
  ])
  const { out, err } = captureOutput(child)
  const docker = (host: string, cmd: string[]) =>
    new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(
        'nsenter',
        ['-t', String(child.pid), '-n', 'docker', ...cmd],
        {
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            DOCKER_HOST: host,
            DOCKER_CONFIG: join(dir, 'docker-config'),
          },
          timeout: 20_000,
        },
        (e, stdout) => resolve({ code: e ? 1 : 0, stdout: String(stdout) }),
      ),
    )
  const stop = async () => {
    if (child.exitCode !== null) return
    const exited = new Promise((r) => child.once('exit', r))
    child.kill('SIGTERM')
    await exited
  }
  return { child, out, err, docker, stop }
}

/** Runs `check` on an isolated CLI once its API is up, and stops it after. */
async function withIsolated(
  dir: string,
  args: string[],
  check: (n: ReturnType<typeof startIsolated>) => Promise<void>,
): Promise<void> {
  const n = startIsolated(dir, args)
  try {
    await waitFor(
      () => n.out().includes('Engine API at'),
      'the API',
      20_000,
      () => n.out() + n.err(),
    )
    await check(n)
  } finally {
    await n.stop()
  }
}

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))

/** DOCKER_CERT_PATH as the CLI reads it: ca.pem, cert.pem, key.pem. */
function certPath(dir: string, name: string, ca: string, client: PemFiles): string {
  const p = join(dir, name)
  mkdirSync(p)
  copyFileSync(ca, join(p, 'ca.pem'))
  copyFileSync(client.cert, join(p, 'cert.pem'))
  copyFileSync(client.key, join(p, 'key.pem'))
  return p
}

function dockerTls(
  host: string,
  args: string[],
  tls?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'docker',
      args,
      {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          DOCKER_HOST: host,
          DOCKER_CONFIG: join(tmpdir(), 'swarmkit-tls-docker-config'),
          ...(tls ? { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: tls } : {}),
        },
        timeout: 20_000,
      },
      (err, stdout, stderr) =>
        resolve({
          code: err ? Number((err as { code?: number }).code ?? 1) : 0,
          stdout: String(stdout),
          stderr: String(stderr),
        }),
    )
  })
}

describe('the Engine API over TLS (--tlsverify), with the real docker CLI', () => {
  let dir: string
  let child: ChildProcess
  let host = ''
  let good = ''
  let stranger = ''
  let misled = ''
  let output = ''
  let ca: PemFiles
  let client: PemFiles

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'swarmkit-api-tls-'))
    ca = makeCa(dir, 'api-ca')
    const server = issueCert(dir, ca, 'server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth')
    client = issueCert(dir, ca, 'client', 'extendedKeyUsage=clientAuth')
    const other = makeCa(dir, 'other-ca')
    const otherClient = issueCert(dir, other, 'intruder', 'extendedKeyUsage=clientAuth')
    good = certPath(dir, 'good', ca.cert, client)
    // The intruder trusts the server's CA, but its own certificate comes from another CA.
    stranger = certPath(dir, 'stranger', ca.cert, otherClient)
    // A client with a good certificate that trusts another CA: it refuses the server.
    misled = certPath(dir, 'misled', other.cert, client)
    child = spawn(process.execPath, [
      CLI,
      '--state-dir',
      join(dir, 'state'),
      '--api',
      '127.0.0.1:0',
      '--listen-addr',
      '127.0.0.1:0',
      '--tlsverify',
      '--tlscacert',
      ca.cert,
      '--tlscert',
      server.cert,
      '--tlskey',
      server.key,
    ])
    child.stdout!.on('data', (d) => {
      output += String(d)
    })
    child.stderr!.on('data', (d) => {
      output += String(d)
    })
    host = await waitFor(
      () => /DOCKER_HOST=(tcp:\/\/\S+)/.exec(output)?.[1],
      'the API address',
      20_000,
      () => output,
    )
  }, 30_000)
  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  })

  it('answers the CLI with a certificate from its CA (DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH)', async () => {
    const r = await dockerTls(host, ['info', '--format', '{{.Swarm.LocalNodeState}}'], good)
    expect(r.stderr).toBe('')
    expect(r.stdout.trim()).toBe('inactive')
    const init = await dockerTls(host, ['swarm', 'init'], good)
    expect(init.code).toBe(0)
    expect((await dockerTls(host, ['node', 'ls', '-q'], good)).stdout.trim()).toMatch(/^[a-z0-9]{25}$/)
  })

  it('refuses a client certificate from another CA, a client without one, and plain HTTP', async () => {
    const r = await dockerTls(host, ['info'], stranger)
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/tls|certificate/i)
    const m = await dockerTls(host, ['info'], misled)
    expect(m.code).not.toBe(0)
    expect(m.stderr).toContain('certificate signed by unknown authority')
    const plain = await dockerTls(host, ['version', '--format', '{{.Server.Version}}'])
    expect(plain.code).not.toBe(0)
    const url = new URL(host.replace('tcp://', 'https://'))
    const noCert = await probeHttps(url, '/_ping', ca.cert)
    expect(noCert).toMatch(/^refused/)
    // With the right certificate the same request is answered.
    const withCert = await probeHttps(url, '/_ping', ca.cert, client)
    expect(withCert).toBe('answered 200')
  })

  it('refuses to serve a non-loopback TCP address without TLS unless --tls=false is said, which warns', async () => {
    const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
      execFile(
        process.execPath,
        [CLI, '--state-dir', join(dir, 'open'), '--api', '0.0.0.0:0'],
        { timeout: 20_000 },
        (err, _out, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, err: String(stderr) }),
      )
    })
    expect(r.code).toBe(2)
    expect(r.err).toContain('refusing to serve the Engine API on tcp://0.0.0.0:0 without TLS')
    expect(r.err).not.toMatch(/\n\s+at /) // no stack trace
    expect(() => checkApiExposure('0.0.0.0:2375', undefined, false)).toThrow(/--tls=false/)
    expect(checkApiExposure('0.0.0.0:2375', undefined, true).warnings[0]).toBe(
      'Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone who has access to your network.',
    )
    expect(checkApiExposure('127.0.0.1:2375', undefined, false).warnings).toEqual([])
    expect(checkApiExposure('/run/swarmkit.sock', undefined, false).warnings).toEqual([])
  })
  it.skipIf(!root)(
    'serves 0.0.0.0 in the clear with --tls=false (or --tlsverify=false), warning in dockerd words; defaults to 127.0.0.1:2375',
    async () => {
      for (const off of ['--tls=false', '--tlsverify=false'])
        await withIsolated(
          join(dir, `clear${off}`),
          ['--api', '0.0.0.0:2375', off, '--log-format', 'json'],
          async (n) => {
            const warnings = n
              .err()
              .trim()
              .split('\n')
              .map((l) => JSON.parse(l) as { level: string; msg: string; fields: Record<string, string> })
              .filter((r) => r.level === 'warning')
            expect(warnings.map((w) => [w.msg, w.fields.host])).toEqual([
              [
                'Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone who has access to your network.',
                'tcp://0.0.0.0:2375',
              ],
              [
                'Binding to an IP address, even on localhost, can also give access to scripts run in a browser. Be safe out there!',
                'tcp://0.0.0.0:2375',
              ],
            ])
            const v = await n.docker('tcp://127.0.0.1:2375', ['version', '--format', '{{.Server.Os}}'])
            expect(v).toEqual({ code: 0, stdout: 'linux\n' })
          },
        )
      // Without --api: loopback port 2375, no warning.
      await withIsolated(join(dir, 'default'), [], async (n) => {
        expect(n.out()).toContain(
          'Engine API at tcp://127.0.0.1:2375: export DOCKER_HOST=tcp://127.0.0.1:2375',
        )
        expect(n.err()).not.toContain('level=warning')
        const info = await n.docker('tcp://127.0.0.1:2375', ['info', '--format', '{{.Swarm.LocalNodeState}}'])
        expect(info.stdout).toBe('inactive\n')
      })
      // A unix socket: no warning either.
      const sock = join(dir, 'api.sock')
      await withIsolated(join(dir, 'unix'), ['--api', sock], async (n) => {
        expect(n.out()).toContain(`export DOCKER_HOST=unix://${sock}`)
        expect(n.err()).not.toContain('level=warning')
        const info = await n.docker(`unix://${sock}`, ['info', '--format', '{{.Swarm.LocalNodeState}}'])
        expect(info.stdout).toBe('inactive\n')
      })
    },
  )
})
