// With --tlsverify the page is behind the Engine API's mutual TLS too: refused without a client certificate
// from the API's CA, and live in Chromium with one.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ClusterNode, startNode } from '../src/index.js'
import { launchBrowser, missingBrowser } from './browser.js'
import { waitFor } from './helpers.js'
import { issueCert, makeCa, type PemFiles, probeHttps } from './openssl-certs.js'

const skip = missingBrowser()

describe.skipIf(!!skip)('the browser view over the Engine API TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'swarmkit-ui-tls-'))
  let n: ClusterNode
  let browser: Browser
  let ca: PemFiles
  let client: PemFiles

  beforeAll(async () => {
    ca = makeCa(dir, 'api-ca')
    const server = issueCert(dir, ca, 'server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth')
    client = issueCert(dir, ca, 'client', 'extendedKeyUsage=clientAuth')
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
    const get = (withCert: boolean) => probeHttps(url, '/ui/', ca.cert, withCert ? client : undefined)
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
