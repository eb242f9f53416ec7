// Joining over TLS: a manager's join listener (clients without a certificate may connect) and the
// joiner's two steps, with pki's helpers. One JSON request line and one JSON answer line per connection,
// both size-limited.
//
// 1. Fetch the root CA over a connection that trusts nothing; the token's digest vouches for the answer
//    (`verifyRootCAResponse`: "remote CA does not match fingerprint").
// 2. Send the CSR and the token over a connection that only completes with a manager whose certificate
//    chains to that root (`joinerTlsOptions(roots)`), so the token never reaches an impostor.

import {
  connect,
  createSecureContext,
  createServer,
  type SecureContext,
  type Server,
  type TLSSocket,
} from 'node:tls'
import * as pki from '@swarmkit/pki'

const MAX_LINE = 64 * 1024
const TIMEOUT_MS = 10_000

export type JoinMessage =
  | { op: 'rootCA' }
  | {
      op: 'join'
      csr: string
      token: string
      hostname: string
      advertiseAddr: string
      /** Where the joiner's raft listens, should the token make it a manager. */
      raftAddr: string
    }

/** What a manager answers to a successful join. */
export interface JoinAnswer extends pki.CertificateResponse {
  /** Where the node's agent talks to the dispatcher (mutual TLS). */
  readonly controlAddr: string
  /** For managers: the raft members to start with. */
  readonly raftPeers?: { id: string; address: string }[]
}

function splitHostPort(address: string): { host: string; port: number } {
  const cut = address.lastIndexOf(':')
  const port = Number(address.slice(cut + 1))
  if (cut <= 0 || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new TypeError(`address must be host:port, got ${JSON.stringify(address)}`)
  return { host: address.slice(0, cut).replace(/^\[|\]$/g, ''), port }
}

/** Reads one newline-terminated JSON value from a socket, at most MAX_LINE bytes. */
function readLine(socket: TLSSocket): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let buf = ''
    const timer = setTimeout(() => fail(new Error('timed out')), TIMEOUT_MS)
    const fail = (err: Error) => {
      clearTimeout(timer)
      socket.destroy()
      reject(err)
    }
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      buf += chunk
      const nl = buf.indexOf('\n')
      if (nl < 0) {
        if (buf.length > MAX_LINE) fail(new Error('message too large'))
        return
      }
      clearTimeout(timer)
      socket.removeAllListeners('data')
      try {
        resolve(JSON.parse(buf.slice(0, nl)))
      } catch {
        fail(new Error('malformed message'))
      }
    })
    socket.on('error', (err) => fail(err))
    socket.on('end', () => fail(new Error('connection closed')))
  })
}

/** Starts a manager's join listener; `handle` answers each request (throw to refuse with its message). */
export async function listenForJoins(
  address: string,
  credentials: pki.TlsCredentials,
  handle: (message: JoinMessage, source: string) => Promise<unknown>,
): Promise<{ server: Server; address: string }> {
  const server = createServer(pki.joinServerTlsOptions(credentials), (socket) => {
    socket.on('error', () => {})
    readLine(socket)
      .then((msg) => {
        const m = msg as JoinMessage
        if (typeof m !== 'object' || m === null || (m.op !== 'rootCA' && m.op !== 'join'))
          throw new Error('unknown request')
        return handle(m, socket.remoteAddress ?? 'unknown')
      })
      .then(
        (answer) => socket.end(`${JSON.stringify({ ok: true, answer })}\n`),
        (err: Error) => socket.end(`${JSON.stringify({ ok: false, error: String(err.message) })}\n`),
      )
      .catch(() => socket.destroy())
  })
  const { host, port } = splitHostPort(address)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const bound = server.address()
  return { server, address: `${host}:${typeof bound === 'object' && bound ? bound.port : port}` }
}

/**
 * The joiner's TLS contexts, one per trust bundle (none for the root CA request): the same for every join,
 * and building one cost more than the handshake (a process joining many simulated nodes spent a fifth of
 * its CPU on them). A few bundles at most (a root rotation adds one).
 */
const joinContexts = new Map<string, SecureContext>()

function joinContext(options: pki.JoinerTlsOptions): SecureContext {
  const roots = typeof options.ca === 'string' ? options.ca : ''
  let context = joinContexts.get(roots)
  if (!context) {
    context = createSecureContext({ minVersion: options.minVersion, ...(roots ? { ca: roots } : {}) })
    if (joinContexts.size >= 4) joinContexts.delete(joinContexts.keys().next().value!)
    joinContexts.set(roots, context)
  }
  return context
}

async function ask(
  address: string,
  options: pki.JoinerTlsOptions,
  message: JoinMessage,
  localAddress?: string,
): Promise<unknown> {
  const { host, port } = splitHostPort(address)
  const socket = connect({
    ...options,
    secureContext: joinContext(options),
    host,
    port,
    ...(localAddress ? { localAddress } : {}),
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve)
    socket.once('error', reject)
  })
  socket.write(`${JSON.stringify(message)}\n`)
  const reply = (await readLine(socket)) as { ok?: boolean; answer?: unknown; error?: unknown }
  socket.end()
  if (reply?.ok !== true) throw new Error(typeof reply?.error === 'string' ? reply.error : 'join refused')
  return reply.answer
}

/** Joins the cluster at `address` with `token`: returns the node's credentials and where to go next. */
export async function joinCluster(
  address: string,
  token: string,
  node: {
    hostname: string
    advertiseAddr: string
    raftAddr: string
    /** The source address to connect from (the CA limits join requests per source address). */
    localAddress?: string
  },
): Promise<{ credentials: pki.NodeCredentials; answer: JoinAnswer }> {
  pki.parseJoinToken(token) // malformed tokens fail here, before any connection
  const from = node.localAddress
  const rootAnswer = await ask(address, pki.joinerTlsOptions(), { op: 'rootCA' }, from)
  const roots = pki.verifyRootCAResponse(token, rootAnswer as pki.RootCAResponse)
  const { key, request } = pki.createJoinRequest(token)
  const answer = (await ask(
    address,
    pki.joinerTlsOptions(roots),
    {
      op: 'join',
      csr: request.csr,
      token: request.token,
      hostname: node.hostname,
      advertiseAddr: node.advertiseAddr,
      raftAddr: node.raftAddr,
    },
    from,
  )) as JoinAnswer
  if (typeof answer?.controlAddr !== 'string') throw new Error('malformed join answer')
  const credentials = pki.acceptCertificateResponse(answer, { key, roots })
  return { credentials, answer }
}
