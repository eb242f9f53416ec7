import type { Socket } from 'node:net'
import {
  createSecureContext,
  type PeerCertificate,
  type SecureContext,
  type TLSSocket,
  type Server as TlsServer,
  connect as tlsConnect,
  createServer as tlsCreateServer,
} from 'node:tls'
import { TransportError } from './errors.js'
import { resolveStreamOptions, StreamTransport, type TcpTransportOptions } from './tcp.js'
import type { PeerIdentity, Transport } from './types.js'

/** Options of {@link tlsTransport}. */
export interface TlsTransportOptions extends TcpTransportOptions {
  /** This node's private key (PEM). */
  readonly key: string | Uint8Array
  /** This node's certificate, then any intermediates (PEM). */
  readonly cert: string | Uint8Array
  /** The CA certificates peers must chain to (PEM). */
  readonly ca: string | Uint8Array | ReadonlyArray<string | Uint8Array>
  /**
   * Decide whether a peer that presented a valid certificate may connect, both when accepting and
   * when dialing. Return false or throw to refuse (the thrown message is reported); the connection is
   * then closed with `UNAUTHORIZED`.
   */
  readonly authorize?: ((identity: PeerIdentity) => boolean | undefined) | undefined
  /** The handshake must finish within this many ms (default 10,000). */
  readonly handshakeTimeoutMs?: number | undefined
}

/** A node's credentials: its key, its certificate chain, and the roots peers must chain to. */
export interface TlsCredentials {
  readonly key: string | Uint8Array
  readonly cert: string | Uint8Array
  readonly ca: string | Uint8Array | ReadonlyArray<string | Uint8Array>
}

/** A {@link tlsTransport}: a transport whose credentials can be replaced while it runs. */
export interface TlsTransport extends Transport {
  /**
   * Replaces the key, certificate and trusted roots (after a certificate renewal or a root rotation). Listeners
   * present the new certificate to the next handshake and dials use them from the next dial on; connections
   * already established stay up. Invalid input throws `TypeError` and changes nothing.
   */
  setCredentials(credentials: TlsCredentials): void
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

/** The identity in a peer certificate: subject CN, OU and O (the first of each when repeated). */
export function identityOf(cert: PeerCertificate): PeerIdentity {
  const subject = (cert.subject ?? {}) as unknown as Record<string, string | string[] | undefined>
  return {
    commonName: first(subject.CN) ?? '',
    organizationalUnit: first(subject.OU),
    organization: first(subject.O),
    certificate: cert.raw ? new Uint8Array(cert.raw) : undefined,
    fingerprint256: cert.fingerprint256,
  }
}

function pem(value: unknown, name: string): string | Buffer {
  if (typeof value === 'string' && value.includes('-----BEGIN')) return value
  if (value instanceof Uint8Array && value.byteLength > 0) return Buffer.from(value)
  throw new TypeError(`${name} must be PEM text or bytes`)
}

/**
 * A mutual TLS 1.3 transport over TCP (`node:tls`). Both sides present a certificate that must chain
 * to `ca`; the peer's identity (certificate CN, OU, O) is then checked by `authorize` and exposed as
 * `connection.remoteIdentity`. Host names are not checked: peers are identified by certificate, not
 * by address.
 */
export function tlsTransport(options: TlsTransportOptions): TlsTransport {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  let secure = secureOptions(options, 'options')
  // One context for every dial, made again only with new credentials: building it (parsing the key, the
  // certificate and the roots) cost more than the handshake itself for a worker dialing once.
  let dialContext: SecureContext = createSecureContext(secure)
  /** Live TLS servers, to hand them new credentials. */
  const servers = new Set<TlsServer>()
  const authorize = options.authorize
  if (authorize !== undefined && typeof authorize !== 'function') {
    throw new TypeError('options.authorize must be a function')
  }
  const resolved = resolveStreamOptions(options)
  const handshakeTimeout = options.handshakeTimeoutMs ?? 10_000
  if (!Number.isSafeInteger(handshakeTimeout) || handshakeTimeout <= 0) {
    throw new RangeError('options.handshakeTimeoutMs must be a positive integer')
  }

  /** Undefined when allowed, else why not. */
  const refusal = (socket: TLSSocket): { identity: PeerIdentity } | TransportError => {
    const peer = socket.getPeerCertificate()
    if (!peer?.subject) {
      return new TransportError('HANDSHAKE_FAILED', 'the peer presented no certificate')
    }
    const identity = identityOf(peer)
    if (authorize) {
      try {
        if (authorize(identity) === false) {
          return new TransportError('UNAUTHORIZED', `peer ${identity.commonName} is not authorized`)
        }
      } catch (error) {
        return new TransportError(
          'UNAUTHORIZED',
          `peer ${identity.commonName} is not authorized: ${(error as Error)?.message ?? error}`,
          { cause: error },
        )
      }
    }
    return { identity }
  }

  const transport = new StreamTransport(
    {
      protocol: 'tls',
      createServer: (onSocket, onError) => {
        const server = tlsCreateServer({
          ...secure,
          requestCert: true,
          rejectUnauthorized: true,
          handshakeTimeout,
        })
        servers.add(server)
        server.on('close', () => servers.delete(server))
        server.on('secureConnection', (socket: TLSSocket) => {
          const verdict = refusal(socket)
          if (verdict instanceof TransportError) {
            socket.on('error', () => {})
            socket.destroy()
            onError(verdict)
            return
          }
          onSocket(socket as Socket, verdict.identity)
        })
        server.on('tlsClientError', (error, socket) => {
          socket.destroy()
          onError(
            new TransportError('HANDSHAKE_FAILED', `TLS handshake failed: ${error.message}`, {
              cause: error,
            }),
          )
        })
        return server
      },
      connect: (host, port) => {
        const socket = tlsConnect({
          secureContext: dialContext,
          minVersion: secure.minVersion,
          maxVersion: secure.maxVersion,
          host,
          port,
          rejectUnauthorized: true,
          checkServerIdentity: () => undefined,
          // No SNI for IP addresses (node warns about it); any name works since names are not checked.
          servername: /^[\d.]+$|:/.test(host) ? '' : host,
        })
        skipNameCheckChain(socket)
        socket.on('error', () => {})
        let connected = false
        socket.once('connect', () => {
          connected = true
        })
        const ready = new Promise<PeerIdentity | undefined>((resolve, reject) => {
          const onError = (error: Error) =>
            reject(
              new TransportError(
                connected ? 'HANDSHAKE_FAILED' : 'DIAL_FAILED',
                `TLS to ${host}:${port}: ${error.message}`,
                {
                  cause: error,
                },
              ),
            )
          socket.once('error', onError)
          socket.once('secureConnect', () => {
            socket.off('error', onError)
            const verdict = refusal(socket)
            if (verdict instanceof TransportError) reject(verdict)
            else resolve(verdict.identity)
          })
        })
        return { socket: socket as Socket, ready }
      },
    },
    resolved,
  ) as StreamTransport & TlsTransport
  transport.setCredentials = (credentials: TlsCredentials): void => {
    if (typeof credentials !== 'object' || credentials === null)
      throw new TypeError('credentials must be an object')
    const next = secureOptions(credentials, 'credentials')
    secure = next
    dialContext = createSecureContext(next)
    for (const server of servers) server.setSecureContext(next)
  }
  return transport
}

/**
 * Node builds the server's whole certificate chain as objects (`getPeerCertificate(true)`, ~0.2 ms, several
 * times that on a loaded machine) after every full handshake, only to hand it to `checkServerIdentity`, which
 * checks nothing here: peers are identified by certificate, not by name. Until the handshake is done, that
 * one call gets an empty certificate; the chain itself was verified by OpenSSL (`rejectUnauthorized`), and
 * the identity is read after the handshake as before. A worker joining in a join storm spent a tenth of its
 * CPU there.
 */
function skipNameCheckChain(socket: TLSSocket): void {
  const own = socket.getPeerCertificate
  socket.getPeerCertificate = ((detailed?: boolean) =>
    detailed === true ? ({} as PeerCertificate) : own.call(socket, detailed)) as typeof own
  const restore = () => Reflect.deleteProperty(socket, 'getPeerCertificate')
  socket.once('secureConnect', restore)
  socket.once('close', restore)
}

function secureOptions(c: TlsCredentials, name: string) {
  const key = pem(c.key, `${name}.key`)
  const cert = pem(c.cert, `${name}.cert`)
  const caList = Array.isArray(c.ca) ? c.ca : [c.ca]
  if (caList.length === 0) throw new TypeError(`${name}.ca must name at least one certificate`)
  const ca = caList.map((x, i) => pem(x, `${name}.ca[${i}]`))
  return { key, cert, ca, minVersion: 'TLSv1.3' as const, maxVersion: 'TLSv1.3' as const }
}
