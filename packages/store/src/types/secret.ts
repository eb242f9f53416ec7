// The `secrets` table: a secret's spec and object, and the size limit secrets and configs share.
import type { Driver, Labels, Meta } from './common.js'

/** What an operator asks a secret to be (Docker's `SecretSpec`). */
export interface SecretSpec {
  name: string
  labels: Labels
  /** The secret value (up to 500 KiB). Never returned by the API: see `redactSecret`. */
  data: Uint8Array
  driver?: Driver
  templating?: Driver
}

/** A secret (Docker's `Secret`); redact it with {@link redactSecret} before showing it. */
export interface Secret {
  id: string
  meta: Meta
  spec: SecretSpec
  /** Secrets managed by the cluster itself. */
  internal?: boolean
}

/** Secret and config data limit (500 KiB), as in swarm. */
export const MAX_SECRET_SIZE = 500 * 1024
