import { typeError } from './internal/check.js'
import type { Secret, SecretSpec } from './types.js'

/** A secret as the API returns it: everything but the data. */
export type RedactedSecret = Omit<Secret, 'spec'> & { spec: Omit<SecretSpec, 'data'> }

/** Leaves the secret's data out, for listing and inspecting (swarm never returns secret data). */
export function redactSecret(secret: Secret): RedactedSecret {
  if (
    typeof secret !== 'object' ||
    secret === null ||
    typeof secret.spec !== 'object' ||
    secret.spec === null
  ) {
    throw typeError('secret', 'be a Secret')
  }
  const { data: _data, ...spec } = secret.spec
  return { ...secret, spec }
}
