import type { PeerCertificate, TLSSocket } from 'node:tls'
import { decodePrivateKeyPem, encodePrivateKeyPem, parseCertificate } from './certificates.js'
import { PkiError } from './errors.js'
import type { KeyPair, NodeIdentity, NodeRole } from './types.js'
import { type AuthorizePolicy, authorize, nodeIdentity, type RevocationList } from './verify.js'

/** What a node needs to speak mutual TLS: its key, its certificate chain and the trust anchors. */
export interface TlsCredentials {
  /** The node's key pair, its 32-byte seed, or its PKCS#8 PEM. */
  readonly key: KeyPair | Uint8Array | string
  /** Node certificate followed by intermediates (PEM). */
  readonly certificate: string
  /** Trust anchors (PEM). */
  readonly roots: string
}

/** The peer check `tlsOptions` installs for client connections. */
export interface PeerPolicy {
  clusterId: string
  /** Roles the server may have (default: both). */
  roles?: readonly NodeRole[]
  revocations?: RevocationList
}

/** Options for `tls.createServer` and `tls.connect` (both accept this shape). */
export interface NodeTlsOptions {
  key: string
  cert: string
  ca: string
  minVersion: 'TLSv1.3'
  requestCert: true
  rejectUnauthorized: true
  checkServerIdentity: (hostname: string, cert: PeerCertificate) => Error | undefined
}

/**
 * `node:tls` options for a node identity: TLS 1.3 only, mutual authentication, the chain verified by
 * OpenSSL against `roots` (so expired and foreign certificates fail the handshake). A client checks the
 * server's node certificate instead of the host name (peers are identified by certificate) and, with
 * `peer`, its cluster, role and revocation, failing the handshake otherwise; servers check their clients
 * with {@link verifyTlsPeer} on `secureConnection`.
 */
export function tlsOptions(credentials: TlsCredentials, options: { peer?: PeerPolicy } = {}): NodeTlsOptions {
  if (typeof credentials !== 'object' || credentials === null)
    throw new TypeError('credentials must be an object')
  const { key, certificate, roots } = credentials
  if (typeof certificate !== 'string' || typeof roots !== 'string') {
    throw new TypeError('credentials.certificate and credentials.roots must be PEM strings')
  }
  const keyPem =
    typeof key === 'string'
      ? encodePrivateKeyPem(decodePrivateKeyPem(key).privateKey) // checked and normalized
      : key instanceof Uint8Array
        ? encodePrivateKeyPem(key)
        : encodePrivateKeyPem((key as KeyPair).privateKey)
  const peer = options.peer
  const policy: AuthorizePolicy | undefined = peer && {
    clusterId: peer.clusterId,
    roles: peer.roles ?? ['swarm-manager', 'swarm-worker'],
    ...(peer.revocations ? { revocations: peer.revocations } : {}),
  }
  return {
    key: keyPem,
    cert: certificate,
    ca: roots,
    minVersion: 'TLSv1.3',
    requestCert: true,
    rejectUnauthorized: true,
    // Peers are identified by certificate, not host name: the server must hold a node certificate and,
    // with a policy, pass it.
    checkServerIdentity: (_host, cert) => {
      try {
        const identity = peerCertificateIdentity(cert)
        if (policy) authorize(identity, policy)
        return undefined
      } catch (err) {
        return err as Error
      }
    },
  }
}

/** Server options for a CA that also serves joiners, which have no certificate yet. */
export interface JoinServerTlsOptions {
  key: string
  cert: string
  ca: string
  minVersion: 'TLSv1.3'
  requestCert: true
  rejectUnauthorized: false
}

/**
 * `node:tls` server options for a manager that accepts joiners: clients may connect without a certificate
 * (to fetch the root CA and send a join request), and a certificate a client does present is still
 * verified, but not enforced: every request other than those two must pass {@link verifyTlsPeer}, which
 * refuses anonymous and unverified peers.
 */
export function joinServerTlsOptions(credentials: TlsCredentials): JoinServerTlsOptions {
  const o = tlsOptions(credentials)
  return {
    key: o.key,
    cert: o.cert,
    ca: o.ca,
    minVersion: 'TLSv1.3',
    requestCert: true,
    rejectUnauthorized: false,
  }
}

/** Client options for a node that is joining (it has no certificate yet). */
export interface JoinerTlsOptions {
  minVersion: 'TLSv1.3'
  rejectUnauthorized: boolean
  ca?: string
  checkServerIdentity?: (hostname: string, cert: PeerCertificate) => Error | undefined
}

/**
 * `node:tls` client options for the two steps of joining. Without `roots`: the connection that fetches the
 * root CA, which trusts nothing (the token's digest vouches for what it returns; see
 * `verifyRootCAResponse`). With the verified `roots`: the connection that sends the join token and CSR,
 * which only completes with a manager holding a certificate from those roots, so the token never goes
 * to an impostor.
 */
export function joinerTlsOptions(roots?: string): JoinerTlsOptions {
  if (roots === undefined) return { minVersion: 'TLSv1.3', rejectUnauthorized: false }
  if (typeof roots !== 'string') throw new TypeError('roots must be a PEM string')
  return {
    minVersion: 'TLSv1.3',
    rejectUnauthorized: true,
    ca: roots,
    checkServerIdentity: (_host, cert) => {
      try {
        const identity = peerCertificateIdentity(cert)
        if (identity.role !== 'swarm-manager') {
          throw new PkiError('UNAUTHORIZED_ROLE', 'the join request must go to a manager')
        }
        return undefined
      } catch (err) {
        return err as Error
      }
    },
  }
}

/** The node identity of a `node:tls` peer certificate, read from its DER with this package's parser. */
export function peerCertificateIdentity(cert: PeerCertificate): NodeIdentity {
  if (!cert || !(cert.raw instanceof Uint8Array)) {
    throw new PkiError('NOT_A_NODE_CERTIFICATE', 'peer presented no certificate')
  }
  return nodeIdentity(parseCertificate(new Uint8Array(cert.raw)))
}

/**
 * Checks the peer of an established, OpenSSL-verified socket against a policy (role, revocation, cluster);
 * returns its identity or throws a `PkiError`. Call it on `secureConnection` and destroy the socket on error.
 */
export function verifyTlsPeer(socket: TLSSocket, policy: AuthorizePolicy): NodeIdentity {
  if (!socket || typeof socket.getPeerCertificate !== 'function') {
    throw new TypeError('socket must be a TLSSocket')
  }
  const cert = socket.getPeerCertificate()
  if (!cert?.raw) throw new PkiError('NOT_A_NODE_CERTIFICATE', 'peer presented no certificate')
  if (!socket.authorized) {
    throw new PkiError(
      'UNKNOWN_ISSUER',
      `peer certificate not verified: ${String(socket.authorizationError)}`,
    )
  }
  return authorize(peerCertificateIdentity(cert), policy)
}
