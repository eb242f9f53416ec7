import { describe, expect, it } from 'vitest'
import { secureRpcDemo } from '../src/secure-rpc.js'

describe('secureRpcDemo', () => {
  it('joins with a token, heartbeats over mutual TLS and refuses a worker a manager-only method', async () => {
    const lines: string[] = []
    const report = await secureRpcDemo((l) => lines.push(l))
    expect(report.wrongTokenRefusal).toBe('A valid join token is necessary to join this cluster')
    expect(report.heartbeatReply).toMatchObject({ ok: true, node: report.workerId })
    expect(report.refusal).toMatch(/swarm-manager/)
    expect(report.ingressSubnet).toBe('10.0.0.0/24')
    expect(lines.length).toBeGreaterThan(4)
  })
})
