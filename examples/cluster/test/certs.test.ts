import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect } from 'node:tls'
import * as pki from '@swarmkit/pki'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { closeNodes, docker, joinSwarm, node, ok, rows, waitFor } from './helpers.js'

const HOUR = 3600_000

/** The certificate a listener shows to a client without one (the join port accepts anonymous clients). */
function servedCertificate(address: string): Promise<{ fingerprint: string; notAfter: number }> {
  const i = address.lastIndexOf(':')
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: address.slice(0, i),
      port: Number(address.slice(i + 1)),
      rejectUnauthorized: false,
    })
    socket.once('secureConnect', () => {
      const c = socket.getPeerCertificate()
      socket.destroy()
      resolve({ fingerprint: c.fingerprint256, notAfter: Date.parse(c.valid_to) })
    })
    socket.once('error', reject)
  })
}

function savedCertificate(n: ClusterNode): pki.Certificate {
  const saved = JSON.parse(readFileSync(join(n.daemon.options.stateDir, 'node.json'), 'utf8'))
  return pki.parseCertificates(saved.certificate)[0]!
}

describe('certificate lifetime and renewal: docker swarm update --cert-expiry', () => {
  let mgr: ClusterNode
  let wrk: ClusterNode
  beforeAll(async () => {
    ;[mgr, wrk] = await Promise.all([node('mgr1'), node('wrk1')])
    await ok(mgr, ['swarm', 'init'])
    await joinSwarm(wrk, mgr, 'worker')
  })
  afterAll(() => closeNodes(mgr, wrk))

  it("refuses a lifetime under an hour with swarm's message and keeps 90 days", async () => {
    const r = await docker(mgr, ['swarm', 'update', '--cert-expiry', '30m'])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain('minimum certificate expiry time is: 1h0m0s')
    const spec = await ok(mgr, ['info', '--format', '{{.Swarm.Cluster.Spec.CAConfig.NodeCertExpiry}}'])
    expect(spec.trim()).toBe('2160h0m0s')
    // Both nodes hold certificates of the default lifetime (backdated an hour).
    for (const n of [mgr, wrk]) {
      const c = savedCertificate(n)
      expect(c.notAfter.getTime() - c.notBefore.getTime()).toBe(90 * 24 * HOUR)
    }
  })

  it('renews both nodes under new keys with the new lifetime; listeners show the new certificate at once', async () => {
    await ok(mgr, ['swarm', 'update', '--cert-expiry', '2h'])
    expect(
      (await ok(mgr, ['info', '--format', '{{.Swarm.Cluster.Spec.CAConfig.NodeCertExpiry}}'])).trim(),
    ).toBe('2h0m0s')
    const joinAddr = mgr.daemon.manager!.joinAddr
    const before = await servedCertificate(joinAddr)
    const workerBefore = savedCertificate(wrk)

    await mgr.daemon.renewCertificate()
    await wrk.daemon.renewCertificate()

    const after = await servedCertificate(joinAddr)
    expect(after.fingerprint).not.toBe(before.fingerprint)
    // 2 h from an hour ago (certificates are backdated an hour against clock skew).
    expect(after.notAfter).toBeGreaterThan(Date.now() + 0.9 * HOUR)
    expect(after.notAfter).toBeLessThan(Date.now() + 1.1 * HOUR)
    const w = savedCertificate(wrk)
    expect(w.notAfter.getTime() - w.notBefore.getTime()).toBe(2 * HOUR)
    expect(Buffer.compare(w.publicKey, workerBefore.publicKey)).not.toBe(0)
    expect(w.subject.commonName).toBe(workerBefore.subject.commonName)
    expect(w.subject.organizationalUnit).toEqual(['swarm-worker'])
  })

  it('keeps working on the renewed certificates, also after both nodes restart', async () => {
    await ok(mgr, [
      'service',
      'create',
      '-d',
      '--no-resolve-image',
      '--name',
      'web',
      '--replicas',
      '4',
      'nginx:alpine',
    ])
    await waitFor(
      async () => (await ok(mgr, ['service', 'ls', '--format', '{{.Replicas}}'])).trim() === '4/4',
      '4/4',
    )
    await Promise.all([mgr.close(), wrk.close()])
    ;[mgr, wrk] = await Promise.all([node('mgr1'), node('wrk1')])
    // The manager starts with the renewed key from its key file; the worker dials it with its renewed one.
    const table = await waitFor(async () => {
      const t = rows(await ok(mgr, ['node', 'ls']))
      return t.length === 2 && t.every((r) => r[2] === 'Ready') && t
    }, 'both nodes ready after the restart')
    expect(table.map((r) => r[1]).sort()).toEqual(['mgr1', 'wrk1'])
    await ok(mgr, ['service', 'scale', '-d', 'web=6'])
    await waitFor(
      async () => (await ok(mgr, ['service', 'ls', '--format', '{{.Replicas}}'])).trim() === '6/6',
      '6/6',
    )
    // The worker runs tasks again: it is reachable with its renewed certificate.
    await waitFor(async () => {
      const ps = await ok(mgr, [
        'service',
        'ps',
        '-f',
        'desired-state=running',
        '--format',
        '{{.Node}} {{.CurrentState}}',
        'web',
      ])
      return ps.split('\n').some((l) => /^wrk1 Running/.test(l))
    }, 'a running task on wrk1')
  })
})
