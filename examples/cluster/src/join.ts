// Joining over TLS: a manager's join listener (clients without a certificate may connect) and the
// joiner's steps, with pki's helpers. One JSON request line and one JSON answer line each, size-limited;
// at most two requests per connection (the root CA, then the join).
//
// 1. Fetch the root CA over a connection that trusts nothing; the token's digest vouches for the answer
//    (`verifyRootCAResponse`: "remote CA does not match fingerprint").
// 2. Send the CSR and the token only to a manager whose certificate chains to that root, so the token never
//    reaches an impostor: on the same connection when the certificate this manager proved in the handshake
//    is a manager's issued by that root, else over a second connection that only completes with such a
//    manager (`joinerTlsOptions(roots)`; a manager whose certificate needs an intermediate, during a root
//    rotation). A join used to take two connections always: with the dispatcher session, three TLS
//    handshakes per node, the largest part of a joiner's CPU in a join storm.

import {
  connect,
  createSecureContext,
  createServer,
  type SecureContext,
  type Server,
  type TLSSocket,
} from 'node:tls'
import * as pki from '@swarmkit/pki'
import { managerCertificateCheck } from './manager-certificate-check.js'

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

/**
 * Reads newline-terminated JSON values from a socket, one per call, each at most MAX_LINE bytes and within
 * TIMEOUT_MS; a failure destroys the socket.
 */
function lineReader(socket: TLSSocket): () => Promise<unknown> {
  let buf = ''
  let failure: Error | undefined
  let waiting:
    | { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
    | undefined
  const fail = (err: Error) => {
    failure ??= err
    socket.destroy()
    if (waiting) {
      clearTimeout(waiting.timer)
      waiting.reject(failure)
      waiting = undefined
    }
  }
  const deliver = () => {
    if (!waiting) return
    const nl = buf.indexOf('\n')
    if (nl < 0) {
      if (buf.length > MAX_LINE) fail(new Error('message too large'))
      return
    }
    const line = buf.slice(0, nl)
    buf = buf.slice(nl + 1)
    const w = waiting
    waiting = undefined
    clearTimeout(w.timer)
    try {
      w.resolve(JSON.parse(line))
    } catch {
      fail(new Error('malformed message'))
      w.reject(failure!)
    }
  }
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => {
    buf += chunk
    if (buf.length > MAX_LINE + 1 && buf.indexOf('\n') < 0) fail(new Error('message too large'))
    else deliver()
  })
  socket.on('error', (err) => fail(err))
  socket.on('end', () => fail(new Error('connection closed')))
  return () =>
    new Promise((resolve, reject) => {
      if (failure) return reject(failure)
      waiting = { resolve, reject, timer: setTimeout(() => fail(new Error('timed out')), TIMEOUT_MS) }
      deliver()
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
    const next = lineReader(socket)
    const serve = async (first: boolean): Promise<void> => {
      const m = (await next()) as JoinMessage
      if (typeof m !== 'object' || m === null || (m.op !== 'rootCA' && m.op !== 'join'))
        throw new Error('unknown request')
      const reply = await handle(m, socket.remoteAddress ?? 'unknown').then(
        (answer) => ({ ok: true, answer }),
        (err: Error) => ({ ok: false, error: String(err.message) }),
      )
      const line = `${JSON.stringify(reply)}\n`
      // The root CA may be followed by the join on the same connection; nothing after a join.
      if (first && m.op === 'rootCA' && reply.ok) {
        socket.write(line)
        return serve(false)
      }
      socket.end(line)
    }
    // A joiner that ends after the root CA (it joins over a second connection) lands here too.
    serve(true).catch(() => socket.destroy())
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

/** A joiner's connection to a manager's join listener: requests in turn, one answer each. */
async function openJoinConnection(
  address: string,
  options: pki.JoinerTlsOptions,
  localAddress?: string,
): Promise<{ socket: TLSSocket; request: (message: JoinMessage) => Promise<unknown> }> {
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
  const next = lineReader(socket)
  const request = async (message: JoinMessage) => {
    socket.write(`${JSON.stringify(message)}\n`)
    const reply = (await next()) as { ok?: boolean; answer?: unknown; error?: unknown }
    if (reply?.ok !== true) throw new Error(typeof reply?.error === 'string' ? reply.error : 'join refused')
    return reply.answer
  }
  return { socket, request }
}

async function ask(
  address: string,
  options: pki.JoinerTlsOptions,
  message: JoinMessage,
  localAddress?: string,
): Promise<unknown> {
  const connection = await openJoinConnection(address, options, localAddress)
  try {
    return await connection.request(message)
  } finally {
    connection.socket.end()
  }
}

/** Root CA bundles found to match a token's digest, by token and bundle (a pure check, kept on success). */
const vouched = new Set<string>()

/**
 * `pki.verifyRootCAResponse`, remembered on success: a process joining many simulated nodes with one token
 * checked the same root CA (the token's BigInt decoding, a digest, a certificate parse) for every join.
 * Any other bundle or token is checked in full.
 */
export function rootsVouchedFor(token: string, response: pki.RootCAResponse): string {
  const key = typeof response?.certificate === 'string' ? `${token}\n${response.certificate}` : undefined
  if (key !== undefined && vouched.has(key)) return response.certificate
  const roots = pki.verifyRootCAResponse(token, response)
  if (key !== undefined) {
    if (vouched.size >= 8) vouched.delete(vouched.values().next().value!)
    vouched.add(key)
  }
  return roots
}

/** Manager certificates found issued by a token's roots, remembered while valid (many joins, few managers). */
const isManagerOfRoots = managerCertificateCheck()

/**
 * Whether the peer of `socket` proved, in its handshake, a manager's certificate issued by one of `roots`
 * (its leaf alone: a chain through an intermediate takes the verified second connection).
 */
function managerOfRoots(socket: TLSSocket, roots: string): boolean {
  const leaf = socket.getPeerX509Certificate()
  return leaf ? isManagerOfRoots(new Uint8Array(leaf.raw), roots) : false
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
  const connection = await openJoinConnection(address, pki.joinerTlsOptions(), from)
  try {
    const roots = rootsVouchedFor(token, (await connection.request({ op: 'rootCA' })) as pki.RootCAResponse)
    const { key, request } = pki.createJoinRequest(token)
    const message: JoinMessage = {
      op: 'join',
      csr: request.csr,
      token: request.token,
      hostname: node.hostname,
      advertiseAddr: node.advertiseAddr,
      raftAddr: node.raftAddr,
    }
    const answer = (
      managerOfRoots(connection.socket, roots)
        ? await connection.request(message)
        : await ask(address, pki.joinerTlsOptions(roots), message, from)
    ) as JoinAnswer
    if (typeof answer?.controlAddr !== 'string') throw new Error('malformed join answer')
    const credentials = pki.acceptCertificateResponse(answer, { key, roots })
    return { credentials, answer }
  } finally {
    connection.socket.end()
  }
}
