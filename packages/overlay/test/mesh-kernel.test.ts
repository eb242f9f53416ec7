// The kernel routing mesh without a kernel: what it asks nftables to do (through an injected runner),
// how it maps failures, and its refusal when really run without root. The kernel itself is exercised by
// mesh-kernel.integration.test.ts.
import { chmodSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'
import { isOverlayError, type MeshService, type NftRunner, routingMesh } from '../src/index.js'
import { sh } from './helpers/lab.js'

// Records every command; `fail` makes the next nft -f fail with that stderr.
function recorder() {
  const calls: Array<{ file: string; args: string[]; input?: string }> = []
  const state = { fail: undefined as string | undefined }
  const exec: NftRunner = async (file, args, options) => {
    calls.push({ file, args, ...(options?.input === undefined ? {} : { input: options.input }) })
    if (args.includes('-f') && state.fail !== undefined) {
      const stderr = state.fail
      state.fail = undefined
      throw Object.assign(new Error('Command failed'), { code: 1, stderr })
    }
    return ''
  }
  const scripts = () => calls.filter((c) => c.input !== undefined).map((c) => c.input!)
  return { calls, state, exec, scripts }
}

const web: MeshService = {
  service: 'web',
  protocol: 'tcp',
  publishedPort: 8080,
  endpoints: [
    { address: '10.0.1.2', port: 80 },
    { address: '10.0.1.3', port: 80, healthy: false },
    { address: '10.0.1.4', port: 8080 },
  ],
}

describe('routingMesh (kernel mode, nft commands)', () => {
  it('writes one table that DNATs round-robin over healthy endpoints and masquerades what leaves', async () => {
    const r = recorder()
    const m = routingMesh({ host: '192.0.2.10', mode: 'kernel', kernel: { exec: r.exec, forwarding: false } })
    await m.publish(web)
    await m.publish({
      service: 'dns',
      protocol: 'udp',
      publishedPort: 53,
      endpoints: [{ address: '10.0.1.5', port: 5353 }],
    })
    const last = r.scripts().at(-1)!
    // Replaced atomically: create-if-missing, delete, then the full table, in one `nft -f`.
    expect(last.split('\n').slice(0, 3)).toEqual([
      'table inet swarmkit_mesh_192_0_2_10 {}',
      'delete table inet swarmkit_mesh_192_0_2_10',
      'table inet swarmkit_mesh_192_0_2_10 {',
    ])
    expect(last).toContain(
      'tcp dport 8080 dnat ip to numgen inc mod 2 map { 0 : 10.0.1.2 . 80, 1 : 10.0.1.4 . 8080 }',
    )
    expect(last).toContain('udp dport 53 dnat ip to 10.0.1.5:5353')
    expect(last).toContain('ip daddr 192.0.2.10 jump services')
    expect(last).toContain(
      'ct status dnat meta l4proto tcp ct original ip daddr 192.0.2.10 ct original proto-dst 8080 oifname != "lo" masquerade',
    )
    expect(last).not.toContain('10.0.1.3')
    expect(m.listening()).toEqual([
      { protocol: 'udp', port: 53, service: 'dns' },
      { protocol: 'tcp', port: 8080, service: 'web' },
    ])
    // The same state gives the same script (reconciling is idempotent).
    await m.publish(web)
    expect(r.scripts().at(-1)).toBe(last)
    // Nothing published: the table is deleted, not left empty.
    await m.unpublish('udp', 53)
    await m.unpublish('tcp', 8080)
    expect(r.scripts().at(-1)).toBe(
      'table inet swarmkit_mesh_192_0_2_10 {}\ndelete table inet swarmkit_mesh_192_0_2_10\n',
    )
  })

  it('answers on every local address for an unspecified host, and handles IPv6', async () => {
    const r = recorder()
    const any = routingMesh({ host: '0.0.0.0', mode: 'kernel', kernel: { exec: r.exec, forwarding: false } })
    await any.publish(web)
    expect(r.scripts().at(-1)).toContain('fib daddr type local jump services')
    const r6 = recorder()
    const v6 = routingMesh({ host: 'fd00::a', mode: 'kernel', kernel: { exec: r6.exec, forwarding: false } })
    await v6.publish({
      service: 'w6',
      protocol: 'tcp',
      publishedPort: 80,
      endpoints: [
        { address: 'fd00:0::2', port: 80 },
        { address: 'fd00::3', port: 81 },
      ],
    })
    const s = r6.scripts().at(-1)!
    expect(s).toContain('table inet swarmkit_mesh_fd00__a {')
    expect(s).toContain(
      'tcp dport 80 dnat ip6 to numgen inc mod 2 map { 0 : fd00::2 . 80, 1 : fd00::3 . 81 }',
    )
    expect(s).toContain('ip6 daddr fd00::a jump services')
    // Endpoints of the other family cannot be translated to.
    await expect(
      v6.publish({
        service: 'x',
        protocol: 'tcp',
        publishedPort: 81,
        endpoints: [{ address: '10.0.0.1', port: 1 }],
      }),
    ).rejects.toThrow(RangeError)
  })

  it('binds host-mode ports only where a task runs, to the local tasks', async () => {
    const r = recorder()
    const m = routingMesh({
      host: '192.0.2.10',
      node: 'n1',
      mode: 'kernel',
      kernel: { exec: r.exec, forwarding: false },
    })
    const svc = (nodes: string[]): MeshService => ({
      service: 'h',
      protocol: 'tcp',
      publishedPort: 9000,
      publishMode: 'host',
      endpoints: nodes.map((node, i) => ({ address: `10.0.2.${i + 2}`, port: 80, node })),
    })
    await m.publish(svc(['n2']))
    expect(m.listening()).toEqual([])
    await m.publish(svc(['n2', 'n1']))
    expect(r.scripts().at(-1)).toContain('tcp dport 9000 dnat ip to 10.0.2.3:80')
    await m.publish(svc(['n2']))
    expect(m.listening()).toEqual([])
  })

  it('runs in the given namespace and turns forwarding on first', async () => {
    const r = recorder()
    const m = routingMesh({ host: '192.0.2.10', mode: 'kernel', kernel: { exec: r.exec, namespace: 'ns1' } })
    await m.publish(web)
    expect(r.calls.map((c) => [c.file, ...c.args].join(' '))).toEqual([
      'ip netns exec ns1 nft --version',
      'ip netns exec ns1 sh -c echo 1 > /proc/sys/net/ipv4/ip_forward',
      'ip netns exec ns1 nft -f -',
    ])
    // IPv6: forwarding is left alone unless asked (it would lift the driver's IPv6 network isolation).
    const r6 = recorder()
    await routingMesh({ host: 'fd00::a', mode: 'kernel', kernel: { exec: r6.exec } }).publish({
      service: 'w6',
      protocol: 'tcp',
      publishedPort: 80,
      endpoints: [{ address: 'fd00::2', port: 80 }],
    })
    expect(r6.calls.map((c) => c.file)).toEqual(['nft', 'nft'])
  })

  it('keeps its previous state when nft refuses, with the error typed', async () => {
    const r = recorder()
    const m = routingMesh({ host: '192.0.2.10', mode: 'kernel', kernel: { exec: r.exec, forwarding: false } })
    await m.publish(web)
    r.state.fail = 'netlink: Error: Could not process rule: Operation not permitted'
    const err = await m.publish({ ...web, publishedPort: 8081 }).catch((e) => e)
    expect(isOverlayError(err, 'PERMISSION_DENIED')).toBe(true)
    expect(err.message).toMatch(/needs root/)
    expect(m.listening().map((l) => l.port)).toEqual([8080])
    r.state.fail = 'Error: syntax error'
    await expect(m.unpublish('tcp', 8080)).rejects.toMatchObject({ code: 'COMMAND_FAILED' })
    expect(m.listening().map((l) => l.port)).toEqual([8080])
    // Closed: the table is deleted and further publishes refused.
    await m.close()
    expect(r.scripts().at(-1)).toMatch(/^table inet \S+ \{\}\ndelete table inet \S+\n$/)
    await expect(m.publish(web)).rejects.toMatchObject({ code: 'CLOSED' })
  })

  it('applies concurrent changes one transaction at a time, ending at the last state', async () => {
    const r = recorder()
    const m = routingMesh({ host: '192.0.2.10', mode: 'kernel', kernel: { exec: r.exec, forwarding: false } })
    const ports = Array.from({ length: 10 }, (_, i) => 9000 + i)
    await Promise.all(
      ports.map((p) =>
        m.publish({
          service: `s${p}`,
          protocol: 'tcp',
          publishedPort: p,
          endpoints: [{ address: '10.0.0.2', port: p }],
        }),
      ),
    )
    await Promise.all(ports.slice(0, 5).map((p) => m.unpublish('tcp', p)))
    const last = r.scripts().at(-1)!
    for (const p of ports) expect(last.includes(`tcp dport ${p} `)).toBe(p >= 9005)
    expect(m.listening().map((l) => l.port)).toEqual(ports.slice(5))
  })

  it('says UNSUPPORTED when nft is missing', async () => {
    const exec: NftRunner = async () => {
      throw Object.assign(new Error('spawn nft ENOENT'), { code: 'ENOENT' })
    }
    const m = routingMesh({ host: '192.0.2.10', mode: 'kernel', kernel: { exec } })
    const err = await m.publish(web).catch((e) => e)
    expect(isOverlayError(err, 'UNSUPPORTED')).toBe(true)
    expect(err.message).toMatch(/nftables/)
  })

  it('checks its options', () => {
    expect(() => routingMesh({ host: '192.0.2.10', mode: 'ipvs' as 'kernel' })).toThrow(/options.mode/)
    expect(() => routingMesh({ host: '192.0.2.10', mode: 'kernel', kernel: { table: 'Bad Name' } })).toThrow(
      /options.kernel.table/,
    )
    expect(() =>
      routingMesh({ host: '192.0.2.10', mode: 'kernel', kernel: { namespace: 'a b; rm -rf /' } }),
    ).toThrow(/options.kernel.namespace/)
    expect(routingMesh({ host: '127.0.0.2' }).mode).toBe('userspace')
    expect((routingMesh({ host: 'FD00::A', mode: 'kernel' }) as unknown as { table: string }).table).toBe(
      'swarmkit_mesh_fd00__a',
    )
  })

  it('refuses with PERMISSION_DENIED when really run without root', async () => {
    if (process.platform !== 'linux') return
    const out = join(tmpdir(), `overlay-mesh-noroot-${process.pid}.mjs`)
    await build({
      entryPoints: [join(import.meta.dirname, 'fixtures', 'mesh-no-root.ts')],
      outfile: out,
      bundle: true,
      platform: 'node',
      format: 'esm',
      conditions: ['@swarmkit/source'],
      logLevel: 'silent',
    })
    try {
      chmodSync(out, 0o644)
      // As root: drop to user nobody (setpriv clears the capabilities). Unprivileged already: run as is.
      const r =
        process.getuid?.() === 0
          ? await sh('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, out])
          : await sh(process.execPath, [out])
      expect(r.err).toBe('')
      expect(r.out).toMatch(/^PERMISSION_DENIED .*needs root \(missing CAP_NET_ADMIN\)/)
    } finally {
      rmSync(out, { force: true })
    }
  })
})
