// TLS for the Engine API, as dockerd does it: `--tlsverify --tlscacert --tlscert --tlskey` makes the API
// answer only clients with a certificate from that CA (the docker CLI's `DOCKER_TLS_VERIFY=1
// DOCKER_CERT_PATH=…`); `--tls` alone encrypts without checking clients. Without TLS the API listens on a
// loopback address or a unix socket; another TCP address needs `--tls=false` said explicitly, and warns.

import { readFile } from 'node:fs/promises'
import { createServer, type RequestListener, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { isIP } from 'node:net'

/** The API's TLS: PEM key and certificate; with `verify`, clients must present a certificate from `ca`. */
export interface ApiTlsOptions {
  readonly key: string
  readonly cert: string
  /** The CA that client certificates must chain to (required with `verify`). */
  readonly ca?: string
  /** Require and check a client certificate (`--tlsverify`). Default true. */
  readonly verify?: boolean
}

/** An HTTP server for `handler`: HTTPS with `tls` (mutual TLS when it verifies), plain HTTP without. */
export function apiServer(tls: ApiTlsOptions | undefined, handler: RequestListener): Server {
  if (!tls) return createServer(handler)
  const verify = tls.verify !== false
  if (verify && !tls.ca) throw new TypeError('tls.ca is required to verify clients (--tlscacert)')
  return createHttpsServer(
    {
      key: tls.key,
      cert: tls.cert,
      ...(tls.ca ? { ca: tls.ca } : {}),
      requestCert: verify,
      rejectUnauthorized: verify,
      minVersion: 'TLSv1.2',
    },
    handler,
  ) as unknown as Server
}

/** Reads `--tlscacert`, `--tlscert`, `--tlskey` (dockerd's default names in `~/.docker` are not assumed). */
export async function loadApiTls(files: {
  cacert?: string
  cert?: string
  key?: string
  verify: boolean
}): Promise<ApiTlsOptions> {
  if (!files.cert || !files.key) throw new Error('TLS needs --tlscert and --tlskey')
  if (files.verify && !files.cacert) throw new Error('--tlsverify needs --tlscacert')
  const read = (path: string, flag: string) =>
    readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new Error(`could not read ${flag} ${path}: ${err.code ?? err.message}`)
    })
  const [key, cert, ca] = await Promise.all([
    read(files.key, '--tlskey'),
    read(files.cert, '--tlscert'),
    files.cacert ? read(files.cacert, '--tlscacert') : undefined,
  ])
  return { key, cert, ...(ca ? { ca } : {}), verify: files.verify }
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '')
  if (h === 'localhost') return true
  if (isIP(h) === 4) return h.startsWith('127.')
  if (isIP(h) === 6) return h === '::1'
  return false
}

/**
 * Whether the API may listen at `address` (`host:port` or a socket path) with this TLS: a unix socket or a
 * loopback address always; another TCP address with client verification, or with `insecure` (`--tls=false`)
 * and warnings. Throws an Error saying what to do otherwise.
 */
export function checkApiExposure(
  address: string,
  tls: ApiTlsOptions | undefined,
  insecure: boolean,
): { warnings: string[] } {
  if (address.startsWith('/')) return { warnings: [] }
  const host = address.slice(0, address.lastIndexOf(':'))
  const verified = !!tls && tls.verify !== false
  if (verified || isLoopback(host)) return { warnings: [] }
  // dockerd's words (its log adds the address as a `host` field).
  const warnings = [
    'Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone who has access to your network.',
    'Binding to an IP address, even on localhost, can also give access to scripts run in a browser. Be safe out there!',
  ]
  if (tls) return { warnings }
  if (!insecure)
    throw new Error(
      `refusing to serve the Engine API on tcp://${address} without TLS: use --tlsverify --tlscacert --tlscert --tlskey, or say --tls=false to run it without authentication`,
    )
  return { warnings }
}
