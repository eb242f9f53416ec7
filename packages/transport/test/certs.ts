import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface TestCert {
  key: string
  cert: string
}

export interface TestPki {
  ca: string
  issue(cn: string, ou: string, o?: string): TestCert
  /** A certificate from a different CA, same subject layout. */
  foreign(cn: string, ou: string): TestCert
  cleanup(): void
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
}

function makeCa(dir: string, name: string): void {
  openssl(dir, 'genpkey', '-algorithm', 'ed25519', '-out', `${name}.key`)
  openssl(
    dir,
    'req',
    '-new',
    '-x509',
    '-key',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  )
}

/** A throwaway CA and node certificates made with the openssl CLI (Ed25519, as swarm's PKI uses). */
export function testPki(organization = 'cluster-1'): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'swarmkit-transport-'))
  makeCa(dir, 'ca')
  makeCa(dir, 'other-ca')
  const ext = join(dir, 'ext.cnf')
  writeFileSync(
    ext,
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n',
  )
  let n = 0
  const issue = (caName: string, cn: string, ou: string, o: string): TestCert => {
    const id = `node${++n}`
    openssl(dir, 'genpkey', '-algorithm', 'ed25519', '-out', `${id}.key`)
    openssl(
      dir,
      'req',
      '-new',
      '-key',
      `${id}.key`,
      '-out',
      `${id}.csr`,
      '-subj',
      `/O=${o}/OU=${ou}/CN=${cn}`,
    )
    openssl(
      dir,
      'x509',
      '-req',
      '-in',
      `${id}.csr`,
      '-CA',
      `${caName}.pem`,
      '-CAkey',
      `${caName}.key`,
      '-set_serial',
      String(1000 + n),
      '-days',
      '1',
      '-extfile',
      ext,
      '-out',
      `${id}.pem`,
    )
    return {
      key: readFileSync(join(dir, `${id}.key`), 'utf8'),
      cert: readFileSync(join(dir, `${id}.pem`), 'utf8'),
    }
  }
  return {
    ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    issue: (cn, ou, o = organization) => issue('ca', cn, ou, o),
    foreign: (cn, ou) => issue('other-ca', cn, ou, organization),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  }
}
