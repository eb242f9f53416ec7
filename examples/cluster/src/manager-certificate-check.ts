// Whether a join listener's certificate is a manager's issued by the roots a join token vouched for (join.ts),
// remembered per certificate and roots for as long as the chain is valid: a process joining many simulated
// nodes checked the same three managers' certificates (two certificate parses and an Ed25519 verification,
// ~1.2 ms in a loaded 1,000-node join profile) once per join. Only a success is remembered, keyed by the exact
// certificate bytes and roots: any other certificate (an impostor's, a worker's) is checked in full.

import * as pki from '@swarmkit/pki'

export interface ManagerCertificateCheckOptions {
  /** The chain check (tests count its calls). Default `pki.verifyChain`. */
  readonly verify?: typeof pki.verifyChain
  /** Wall clock in ms (tests move it past a certificate's end). Default `Date.now`. */
  readonly now?: () => number
  /** Certificates remembered at most (the oldest goes first). Default 16. */
  readonly size?: number
}

/** Returns the check: whether `der` (a leaf alone) is a manager's certificate issued by one of `roots`. */
export function managerCertificateCheck(
  options: ManagerCertificateCheckOptions = {},
): (der: Uint8Array, roots: string) => boolean {
  const verify = options.verify ?? pki.verifyChain
  const now = options.now ?? Date.now
  const size = options.size ?? 16
  /** Valid from and until (ms), by roots and certificate. */
  const verified = new Map<string, { from: number; until: number }>()
  return (der, roots) => {
    const key = `${roots}\n${Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64')}`
    const at = now()
    const known = verified.get(key)
    if (known && at >= known.from && at <= known.until) return true
    let chain: pki.VerifiedChain
    try {
      chain = verify([pki.parseCertificate(der)], { roots, roles: ['swarm-manager'], now: at })
    } catch {
      verified.delete(key)
      return false
    }
    // The chain holds while every certificate on its path (the leaf and its trust anchor) does.
    const from = Math.max(...chain.path.map((c) => c.notBefore.getTime()))
    const until = Math.min(...chain.path.map((c) => c.notAfter.getTime()))
    verified.delete(key)
    verified.set(key, { from, until })
    if (verified.size > size) verified.delete(verified.keys().next().value!)
    return true
  }
}
