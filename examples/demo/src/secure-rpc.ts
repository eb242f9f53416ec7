import { ipam } from '@swarmkit/overlay'
import * as pki from '@swarmkit/pki'
import { rpcClient, rpcServer, type TransportError, tlsTransport } from '@swarmkit/transport'

type Log = (line: string) => void

export interface SecureRpcReport {
  readonly clusterId: string
  readonly workerId: string
  readonly heartbeatReply: unknown
  readonly refusal: string
  readonly wrongTokenRefusal: string
  readonly ingressSubnet: string
}

/**
 * A manager and a worker that joins it with a token, then talk over mutual TLS 1.3 with per-method
 * authorization by certificate role: the worker may heartbeat but may not call a manager-only method.
 * The join runs in-process here (the CA's half is transport-free); the reference cluster serves it over TLS.
 */
export async function secureRpcDemo(log: Log): Promise<SecureRpcReport> {
  const clusterId = pki.generateClusterId()
  const ca = pki.createRootCA()
  const joinTokens = pki.generateJoinTokens(ca.pem)
  const ca0 = pki.caServer({ ca, joinTokens, clusterId })
  log(
    `cluster ${clusterId}: root CA ${ca.certificate.subject.commonName}, worker token ${joinTokens.worker.slice(0, 30)}…`,
  )

  const managerKey = pki.generateKeyPair()
  const managerCert = pki.issueNodeCertificate(ca, pki.createCSR(managerKey.privateKey), {
    nodeId: pki.generateNodeId(),
    role: 'swarm-manager',
    clusterId,
  })

  const join = (token: string) => {
    const roots = pki.verifyRootCAResponse(token, ca0.getRootCA())
    const { key, request } = pki.createJoinRequest(token)
    return pki.acceptCertificateResponse(ca0.join(request, { source: '127.0.0.1' }), { key, roots })
  }
  let wrongTokenRefusal = ''
  try {
    join(pki.rotateJoinToken(joinTokens.worker))
  } catch (err) {
    wrongTokenRefusal = (err as Error).message
  }
  log(`a joiner with a stale token is refused: "${wrongTokenRefusal}"`)
  const worker = join(joinTokens.worker)
  log(`worker ${worker.identity.nodeId} joined as ${worker.identity.role}`)

  const authorize = pki.authorizer({ roles: ['swarm-manager', 'swarm-worker'], clusterId })
  const server = rpcServer({
    transport: tlsTransport({
      key: pki.encodePrivateKeyPem(managerKey.privateKey),
      cert: managerCert.chain,
      ca: ca.pem,
      authorize,
    }),
    methods: {
      'node.heartbeat': {
        kind: 'call',
        roles: ['swarm-worker', 'swarm-manager'],
        handler: (_payload, ctx) => ({ ok: true, node: ctx.identity?.commonName, periodMs: 5000 }),
      },
      'cluster.inspect': { kind: 'call', roles: ['swarm-manager'], handler: () => ({ clusterId }) },
    },
  })
  const listening = await server.listen('127.0.0.1:0')
  const client = rpcClient({
    transport: tlsTransport({
      key: pki.encodePrivateKeyPem(worker.key.privateKey),
      cert: worker.certificate,
      ca: worker.roots,
      authorize,
    }),
    address: listening,
  })
  try {
    const heartbeatReply = await client.call('node.heartbeat', {})
    log(`worker heartbeat over mutual TLS 1.3: ${JSON.stringify(heartbeatReply)}`)
    let refusal = ''
    try {
      await client.call('cluster.inspect', {})
    } catch (err) {
      refusal = `${(err as TransportError).code}: ${(err as Error).message}`
    }
    log(`worker calling a manager-only method: ${refusal}`)

    const addresses = ipam()
    const ingress = addresses.allocateSubnet('ingress')
    const vip = addresses.allocateAddress('ingress')
    log(`overlay: ingress network ${ingress.subnet} (gateway ${ingress.gateway}), a service VIP ${vip}`)
    return {
      clusterId,
      workerId: worker.identity.nodeId,
      heartbeatReply,
      refusal,
      wrongTokenRefusal,
      ingressSubnet: ingress.subnet,
    }
  } finally {
    await client.close()
    await server.close()
  }
}
