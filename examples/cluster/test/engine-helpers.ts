// Tests against a real Docker Engine: the engine (SWARMKIT_TEST_ENGINE, or the private one that
// scripts/test-dockerd.sh starts), the test images (imported from a busybox rootfs, no registry), and
// cleanup of the containers a test's nodes made.
import { execFile } from 'node:child_process'
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
// Beside the sources, or from the repository root when bundled elsewhere (bench/).
const SCRIPT = [
  join(dirname(fileURLToPath(import.meta.url)), '../../../scripts/test-dockerd.sh'),
  join(process.cwd(), 'scripts/test-dockerd.sh'),
].find((p) => existsSync(p))!

/** `docker` against the engine itself (not a node). */
export async function engineDocker(addr: string, args: string[], input?: string): Promise<string> {
  const p = run('docker', ['-H', addr, ...args], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      DOCKER_CONFIG: join(tmpdir(), 'swarmkit-engine-docker-config'),
    },
    timeout: 60_000,
    maxBuffer: 64 * 1024 * 1024,
  })
  if (input !== undefined) p.child.stdin?.end(input)
  return (await p).stdout
}

let engine: Promise<string | undefined> | undefined

/**
 * The engine tests run on, or undefined (the tests skip) when none can be had outside CI. In CI
 * (SWARMKIT_CI=1) a missing engine fails the tests.
 */
export function testEngine(): Promise<string | undefined> {
  engine ??= (async () => {
    const given = process.env.SWARMKIT_TEST_ENGINE
    const why = (msg: string) => {
      if (process.env.SWARMKIT_CI) throw new Error(`a Docker Engine is required in CI: ${msg}`)
      console.warn(`skipping Docker Engine tests: ${msg}`)
      return undefined
    }
    if (given) {
      try {
        await engineDocker(given, ['version'])
        return given
      } catch (err) {
        return why(`SWARMKIT_TEST_ENGINE=${given} does not answer: ${(err as Error).message}`)
      }
    }
    if (process.getuid?.() !== 0) return why('not root (dockerd needs root)')
    try {
      await run('bash', [SCRIPT, 'start'], { timeout: 120_000 })
      return (await run('bash', [SCRIPT, 'status'])).stdout.trim()
    } catch (err) {
      return why(`scripts/test-dockerd.sh start failed: ${(err as Error).message}`)
    }
  })()
  return engine
}

export const IMAGES = {
  webV1: 'swarmkit-test/web:v1',
  webV2: 'swarmkit-test/web:v2',
  exit1: 'swarmkit-test/exit1:latest',
  unhealthy: 'swarmkit-test/unhealthy:latest',
  job: 'swarmkit-test/job:latest',
  stubborn: 'swarmkit-test/stubborn:latest',
} as const

const SCRIPTS: Record<string, string> = {
  // Serves a page naming its version and its host name (the task name with --hostname '{{.Task.Name}}'),
  // and at /cgi-bin/peer the address the request came from.
  web: `#!/bin/sh
mkdir -p /www/cgi-bin
echo "web $VERSION on $(hostname)" > /www/index.html
cat > /www/cgi-bin/peer <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n%s\\n' "$REMOTE_ADDR"
CGI
chmod +x /www/cgi-bin/peer
echo "web $VERSION listening as $(hostname)"
trap 'echo "web $VERSION stopping"; kill $pid; exit 0' TERM INT
httpd -f -v -p 80 -h /www &
pid=$!
wait $pid
`,
  exit1: `#!/bin/sh
echo "about to fail"
sleep 0.3
exit 1
`,
  unhealthy: `#!/bin/sh
touch /tmp/healthy
trap 'exit 0' TERM
sleep 2
rm -f /tmp/healthy
echo "now unhealthy"
while :; do sleep 1; done
`,
  job: `#!/bin/sh
echo "job working"
sleep 0.3
echo "job done"
`,
  stubborn: `#!/bin/sh
trap 'echo "ignoring SIGTERM"' TERM
echo "stubborn running"
while :; do sleep 1; done
`,
}

const images = new Map<string, Promise<void>>()

/** Imports the test images into `addr` (once per engine and process; kept when already there). */
export function buildImages(addr: string): Promise<void> {
  const known = images.get(addr)
  if (known) return known
  const made = (async () => {
    const have = await engineDocker(addr, ['images', '--format', '{{.Repository}}:{{.Tag}}'])
    const missing = Object.entries(IMAGES).filter(([, ref]) => !have.includes(ref))
    if (missing.length === 0) return
    const root = mkdtempSync(join(tmpdir(), 'swarmkit-rootfs-'))
    try {
      mkdirSync(join(root, 'bin'))
      mkdirSync(join(root, 'tmp'))
      mkdirSync(join(root, 'etc'))
      writeFileSync(
        join(root, 'etc/passwd'),
        'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n',
      )
      writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n')
      copyFileSync('/usr/bin/busybox', join(root, 'bin/busybox'))
      chmodSync(join(root, 'bin/busybox'), 0o755)
      const applets = (await run('/usr/bin/busybox', ['--list'])).stdout.split('\n').filter(Boolean)
      for (const a of applets) if (a !== 'busybox') symlinkSync('busybox', join(root, 'bin', a))
      for (const [name, text] of Object.entries(SCRIPTS)) {
        writeFileSync(join(root, 'bin', `task-${name}`), text)
        chmodSync(join(root, 'bin', `task-${name}`), 0o755)
      }
      const tar = (
        await run('tar', ['-C', root, '-c', '.'], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 })
      ).stdout as unknown as Buffer
      const changes: Record<string, string[]> = {
        [IMAGES.webV1]: ['ENV VERSION=v1', 'CMD ["/bin/task-web"]'],
        [IMAGES.webV2]: ['ENV VERSION=v2', 'CMD ["/bin/task-web"]'],
        [IMAGES.exit1]: ['CMD ["/bin/task-exit1"]'],
        [IMAGES.unhealthy]: [
          'CMD ["/bin/task-unhealthy"]',
          'HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD test -f /tmp/healthy',
        ],
        [IMAGES.job]: ['CMD ["/bin/task-job"]'],
        [IMAGES.stubborn]: ['CMD ["/bin/task-stubborn"]'],
      }
      for (const [, ref] of missing) {
        const args = ['import', ...changes[ref]!.flatMap((c) => ['-c', c]), '-', ref]
        await new Promise<void>((resolve, reject) => {
          const child = execFile('docker', ['-H', addr, ...args], { timeout: 60_000 }, (err) =>
            err ? reject(err) : resolve(),
          )
          child.stdin?.end(tar)
        })
      }
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })()
  images.set(addr, made)
  return made
}

/** The containers of `nodeIds` on the engine (any state), as `name state` lines. */
export async function containersOf(addr: string, nodeIds: string[]): Promise<string[]> {
  const out: string[] = []
  for (const id of nodeIds) {
    const lines = await engineDocker(addr, [
      'ps',
      '-a',
      '--filter',
      `label=com.docker.swarm.node.id=${id}`,
      '--format',
      '{{.Names}} {{.State}}',
    ])
    out.push(...lines.split('\n').filter(Boolean))
  }
  return out
}

/** Removes every container of `nodeIds` (a test's nodes leave nothing behind on a shared engine). */
export async function removeContainers(addr: string, nodeIds: string[]): Promise<void> {
  for (const id of nodeIds) {
    const ids = (await engineDocker(addr, ['ps', '-aq', '--filter', `label=com.docker.swarm.node.id=${id}`]))
      .split('\n')
      .filter(Boolean)
    if (ids.length > 0) await engineDocker(addr, ['rm', '-f', '-v', ...ids]).catch(() => {})
  }
}
