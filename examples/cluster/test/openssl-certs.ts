// Certificates made with openssl (EC P-256, two days) for the Engine API TLS tests, and an HTTPS probe that
// says whether a server answers a client with or without a certificate.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { join } from 'node:path'

/** Paths of a PEM certificate and its key. */
export interface PemFiles {
  readonly cert: string
  readonly key: string
}

/** Runs openssl; its chatter stays out of the test output (a failure still carries it). */
const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' })

function newKey(dir: string, name: string): string {
  const key = join(dir, `${name}-key.pem`)
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key])
  return key
}

/** A self-signed CA named `name`, in `dir`. */
export function makeCa(dir: string, name: string): PemFiles {
  const key = newKey(dir, name)
  const cert = join(dir, `${name}.pem`)
  openssl(['req', '-x509', '-new', '-key', key, '-days', '2', '-subj', `/CN=${name}`, '-out', cert])
  return { cert, key }
}

/** A certificate for `name` issued by `ca`, with the X.509 extensions `ext` (openssl extfile lines). */
export function issueCert(dir: string, ca: PemFiles, name: string, ext: string): PemFiles {
  const key = newKey(dir, name)
  const csr = join(dir, `${name}.csr`)
  const cert = join(dir, `${name}.pem`)
  const extFile = join(dir, `${name}.ext`)
  writeFileSync(extFile, `${ext}\n`)
  openssl(['req', '-new', '-key', key, '-subj', `/CN=${name}`, '-out', csr])
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    extFile,
    '-out',
    cert,
  ])
  return { cert, key }
}

/** GET `path` at `url`'s host over HTTPS trusting `ca`: `answered STATUS`, or `refused: …` by the TLS layer. */
export function probeHttps(url: URL, path: string, ca: string, client?: PemFiles): Promise<string> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path,
        ca: readFileSync(ca),
        ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}),
      },
      (res) => {
        res.resume()
        resolve(`answered ${res.statusCode}`)
      },
    )
    req.on('error', (err) => resolve(`refused: ${err.message}`))
    req.end()
  })
}
