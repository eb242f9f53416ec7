// The `configs` table: a config's spec and object.
import type { Driver, Labels, Meta } from './common.js'

/** What an operator asks a config to be (Docker's `ConfigSpec`). */
export interface ConfigSpec {
  name: string
  labels: Labels
  /** The config contents (up to 500 KiB); returned by the API, unlike secret data. */
  data: Uint8Array
  templating?: Driver
}

/** A config (Docker's `Config`). */
export interface Config {
  id: string
  meta: Meta
  spec: ConfigSpec
}
