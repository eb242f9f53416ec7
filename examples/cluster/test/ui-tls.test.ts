// With --tlsverify the page is behind the Engine API's mutual TLS too: refused without a client certificate
// from the API's CA, and live in Chromium with one.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ClusterNode, startNode } from '../src/index.js'
import { launchBrowser, missingBrowser } from './browser.js'
import { waitFor } from './helpers.js'

const skip = missingBrowser()

/** An EC P-256 key and a certificate for it: self-signed (a CA) or issued by `ca`. */
function cert(dir: string, name: string, ext: string, ca?: { cert: string; key: string }) {
  const key = join(dir, `${name}-key.pem`)
  const crt = join(dir, `${name}.pem`)
  const extFile = join(dir, `${name}.ext`)
  writeFileSync(extFile, `${ext}\n`)
  execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key])
  if (!ca) {
    execFileSync('openssl', [
      'req',
      '-x509',
      '-new',
      '-key',
      key,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-out',
      crt,
    ])
  } else {
    const csr = join(dir, `${name}.csr`)
    execFileSync('openssl', ['req', '-new', '-key', key, '-subj', `/CN=${name}`, '-out', csr])
    execFileSync('openssl', [
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
      crt,
    ])
  }
  return { cert: crt, key }
}

describe.skipIf(!!skip)('the browser view over the Engine API TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'swarmkit-ui-tls-'))
  let n: ClusterNode
  let browser: Browser
  let ca: { cert: string; key: string }
  let client: { cert: string; key: string }

  beforeAll(async () => {
    ca = cert(dir, 'api-ca', 'basicConstraints=critical,CA:true')
    const server = cert(dir, 'server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth', ca)
    client = cert(dir, 'client', 'extendedKeyUsage=clientAuth', ca)
    n = await startNode({
      stateDir: join(dir, 'state'),
      apiAddress: '127.0.0.1:0',
      hostname: 'tls-manager',
      listenAddr: '127.0.0.1:0',
      taskStepMs: 20,
      routingMesh: false,
      apiTls: {
        key: readFileSync(server.key, 'utf8'),
        cert: readFileSync(server.cert, 'utf8'),
        ca: readFileSync(ca.cert, 'utf8'),
        verify: true,
      },
    })
    browser = await launchBrowser()
  }, 60_000)
  afterAll(async () => {
    await browser?.close()
    await n?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('refuses a client without a certificate and shows the swarm to one with', async () => {
    expect(n.uiUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/ui\/$/)
    const url = new URL(n.uiUrl!)
    const get = (withCert: boolean) =>
      new Promise<string>((resolve) => {
        const req = request(
          {
            host: url.hostname,
            port: url.port,
            path: '/ui/',
            ca: readFileSync(ca.cert),
            ...(withCert ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}),
          },
          (res) => resolve(`answered ${res.statusCode}`),
        )
        req.on('error', (err) => resolve(`refused: ${err.message}`))
        req.end()
      })
    expect(await get(false)).toMatch(/^refused/)
    expect(await get(true)).toBe('answered 200')

    // swarm init through the same mutual TLS, then the page in Chromium with the client certificate.
    const init = await fetchTls(url, '/v1.50/swarm/init', {
      ListenAddr: '127.0.0.1:0',
      AdvertiseAddr: '127.0.0.1',
    })
    expect(init).toMatch(/^"?[a-z0-9]{25}"?$/)
    const context = await browser.newContext({
      ignoreHTTPSErrors: true,
      clientCertificates: [{ origin: url.origin, certPath: client.cert, keyPath: client.key }],
    })
    const page = await context.newPage()
    await page.goto(n.uiUrl!)
    await waitFor(
      async () => (await page.locator('.column .node-name').allTextContents()).includes('tls-manager'),
      'the node on the page over TLS',
      30_000,
    )
    await waitFor(
      async () => (await page.locator('tr[data-answered="true"]').count()) === 1,
      'its raft row',
      30_000,
    )
    await context.close()
  }, 90_000)

  function fetchTls(url: URL, path: string, body: unknown): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path,
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          ca: readFileSync(ca.cert),
          cert: readFileSync(client.cert),
          key: readFileSync(client.key),
        },
        (res) => {
          let text = ''
          res.on('data', (d) => {
            text += String(d)
          })
          res.on('end', () => resolve(text.trim()))
        },
      )
      req.on('error', reject)
      req.end(JSON.stringify(body))
    })
  }
})
