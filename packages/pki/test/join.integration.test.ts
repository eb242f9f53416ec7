// Joining over real node:tls: fetch the root CA without trust, check it against the token, send the token
// and CSR only to a manager whose certificate chains to that root, then speak mutual TLS as a member.
// The messages travel as one JSON line each: any transport can carry them the same way.
import type { AddressInfo } from 'node:net'
import { connect, createServer, type Server, type TLSSocket } from 'node:tls'
import { afterEach, describe, expect, it } from 'vitest'
import {
  acceptCertificateResponse,
  type CAServer,
  caServer,
  createCSR,
  createJoinRequest,
  createRootCA,
  generateClusterId,
  generateJoinTokens,
  generateKeyPair,
  generateNodeId,
  issueNodeCertificate,
  joinerTlsOptions,
  joinServerTlsOptions,
  type RootCA,
  tlsOptions,
  verifyRootCAResponse,
  verifyTlsPeer,
} from '../src/index.js'

const servers: Server[] = []
afterEach(() => {
  for (const s of servers.splice(0)) s.close()
})

function managerOf(ca: RootCA, clusterId: string) {
  const key = generateKeyPair()
  const issued = issueNodeCertificate(ca, createCSR(key.privateKey), {
    nodeId: generateNodeId(),
    role: 'swarm-manager',
    clusterId,
  })
  return { key, certificate: issued.chain, roots: ca.pem }
}

/** A manager that answers `root`, `join` (anonymous allowed) and `whoami` (members only). */
async function startManager(server: CAServer, creds: ReturnType<typeof managerOf>, clusterId: string) {
  const seenTokens: string[] = []
  const srv = createServer(joinServerTlsOptions(creds), (socket: TLSSocket) => {
    socket.setEncoding('utf8')
    let buf = ''
    socket.on('data', (d) => {
      buf += d
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      const msg = JSON.parse(buf.slice(0, nl))
      let reply: unknown
      try {
        if (msg.type === 'root') reply = server.getRootCA()
        else if (msg.type === 'join') {
          seenTokens.push(msg.request.token)
          reply = server.join(msg.request, { source: socket.remoteAddress ?? '?' })
        } else reply = verifyTlsPeer(socket, { roles: ['swarm-manager', 'swarm-worker'], clusterId })
      } catch (err) {
        reply = { error: (err as Error).message }
      }
      socket.end(`${JSON.stringify(reply)}\n`)
    })
    socket.on('error', () => {})
  })
  servers.push(srv)
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  return { port: (srv.address() as AddressInfo).port, seenTokens }
}

function call(port: number, options: object, msg: unknown): Promise<any> {
  return new Promise((resolve, reject) => {
    const socket = connect({ ...options, host: '127.0.0.1', port })
    let buf = ''
    socket.setEncoding('utf8')
    socket.on('secureConnect', () => socket.write(`${JSON.stringify(msg)}\n`))
    socket.on('data', (d) => (buf += d))
    socket.on('error', reject)
    socket.on('close', () => (buf ? resolve(JSON.parse(buf)) : reject(new Error('closed without a reply'))))
  })
}

describe('joining over TLS', () => {
  it('joins, then talks mutual TLS as a member; anonymous peers get nothing else', async () => {
    const clusterId = generateClusterId()
    const ca = createRootCA()
    const tokens = generateJoinTokens(ca.pem)
    const manager = await startManager(
      caServer({ ca, joinTokens: tokens, clusterId }),
      managerOf(ca, clusterId),
      clusterId,
    )

    const rootResponse = await call(manager.port, joinerTlsOptions(), { type: 'root' })
    const roots = verifyRootCAResponse(tokens.worker, rootResponse)
    const { key, request } = createJoinRequest(tokens.worker)
    const response = await call(manager.port, joinerTlsOptions(roots), { type: 'join', request })
    const creds = acceptCertificateResponse(response, { key, roots })
    expect(creds.identity.role).toBe('swarm-worker')

    const me = await call(manager.port, tlsOptions(creds, { peer: { clusterId } }), { type: 'whoami' })
    expect(me).toEqual(creds.identity)
    const anonymous = await call(manager.port, joinerTlsOptions(roots), { type: 'whoami' })
    expect(anonymous).toEqual({ error: 'peer presented no certificate' })
  })

  it('never sends the token to an impostor that copies the real root CA', async () => {
    const clusterId = generateClusterId()
    const ca = createRootCA()
    const tokens = generateJoinTokens(ca.pem)
    // The impostor serves the genuine (public) root certificate but holds a certificate from its own CA.
    const fake = createRootCA()
    const impostorCA = caServer({
      ca: fake,
      roots: ca.pem,
      joinTokens: generateJoinTokens(fake.pem),
      clusterId,
    })
    const impostor = await startManager(impostorCA, managerOf(fake, clusterId), clusterId)

    const roots = verifyRootCAResponse(
      tokens.worker,
      await call(impostor.port, joinerTlsOptions(), { type: 'root' }),
    )
    const { request } = createJoinRequest(tokens.worker)
    await expect(call(impostor.port, joinerTlsOptions(roots), { type: 'join', request })).rejects.toThrow()
    expect(impostor.seenTokens).toEqual([])
  })

  it('refuses a root CA that does not match the token', async () => {
    const clusterId = generateClusterId()
    const fake = createRootCA()
    const impostor = await startManager(
      caServer({ ca: fake, joinTokens: generateJoinTokens(fake.pem), clusterId }),
      managerOf(fake, clusterId),
      clusterId,
    )
    const token = generateJoinTokens(createRootCA().pem).worker
    const response = await call(impostor.port, joinerTlsOptions(), { type: 'root' })
    expect(() => verifyRootCAResponse(token, response)).toThrow('remote CA does not match fingerprint')
  })

  it('sends the join request only to managers', async () => {
    const clusterId = generateClusterId()
    const ca = createRootCA()
    const tokens = generateJoinTokens(ca.pem)
    const workerKey = generateKeyPair()
    const worker = {
      key: workerKey,
      certificate: issueNodeCertificate(ca, createCSR(workerKey.privateKey), {
        nodeId: generateNodeId(),
        role: 'swarm-worker',
        clusterId,
      }).chain,
      roots: ca.pem,
    }
    const notAManager = await startManager(caServer({ ca, joinTokens: tokens, clusterId }), worker, clusterId)
    const { request } = createJoinRequest(tokens.worker)
    await expect(call(notAManager.port, joinerTlsOptions(ca.pem), { type: 'join', request })).rejects.toThrow(
      'the join request must go to a manager',
    )
    expect(notAManager.seenTokens).toEqual([])
  })
})
