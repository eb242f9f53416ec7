// Strict PEM (RFC 7468): labelled base64 blocks, text outside blocks ignored, base64 checked
// character by character, sizes bounded before anything is decoded.
import { PkiError } from '../errors.js'

/** Largest PEM text accepted (a trust bundle of a few certificates is a few KiB). */
export const MAX_PEM_SIZE = 256 * 1024
/** Most blocks accepted in one PEM text. */
export const MAX_PEM_BLOCKS = 16

export interface PemBlock {
  readonly label: string
  readonly der: Uint8Array
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/

function fail(message: string): never {
  throw new PkiError('MALFORMED_PEM', message)
}

export function decodePem(text: string | Uint8Array, maxSize = MAX_PEM_SIZE): PemBlock[] {
  if (typeof text !== 'string') {
    if (!(text instanceof Uint8Array)) throw new TypeError('pem must be a string or Uint8Array')
    if (text.length > maxSize) throw new PkiError('TOO_LARGE', `PEM input exceeds ${maxSize} bytes`)
    text = new TextDecoder().decode(text)
  }
  if (text.length > maxSize) throw new PkiError('TOO_LARGE', `PEM input exceeds ${maxSize} bytes`)
  const lines = text.split(/\r?\n/)
  const blocks: PemBlock[] = []
  let label: string | undefined
  let body: string[] = []
  for (const raw of lines) {
    const line = raw.replace(/[ \t]+$/, '')
    if (label === undefined) {
      const m = /^-----BEGIN ([A-Z0-9 ]{1,64})-----$/.exec(line)
      if (m) {
        label = m[1]!
        body = []
      } else if (line.startsWith('-----')) fail(`unexpected PEM boundary: ${line.slice(0, 80)}`)
      continue
    }
    if (line.startsWith('-----')) {
      if (line !== `-----END ${label}-----`) fail(`PEM block "${label}" ends with a mismatched boundary`)
      const b64 = body.join('')
      if (b64.length === 0) fail(`PEM block "${label}" is empty`)
      if (b64.length % 4 !== 0 || !B64.test(b64)) fail(`PEM block "${label}" is not valid base64`)
      const der = new Uint8Array(Buffer.from(b64, 'base64'))
      // Buffer's decoder is lenient; re-encoding must give back exactly the input.
      if (Buffer.from(der).toString('base64') !== b64) fail(`PEM block "${label}" is not canonical base64`)
      blocks.push({ label, der })
      if (blocks.length > MAX_PEM_BLOCKS)
        throw new PkiError('TOO_LARGE', `more than ${MAX_PEM_BLOCKS} PEM blocks`)
      label = undefined
      continue
    }
    if (line.includes(':')) fail(`PEM headers are not supported (block "${label}")`)
    body.push(line.replace(/^[ \t]+/, ''))
  }
  if (label !== undefined) fail(`PEM block "${label}" has no END line`)
  if (blocks.length === 0) fail('no PEM block found')
  return blocks
}

/** Blocks of one label; any other label is an error. */
export function decodePemOf(text: string | Uint8Array, label: string): Uint8Array[] {
  const blocks = decodePem(text)
  for (const b of blocks) if (b.label !== label) fail(`expected PEM "${label}", found "${b.label}"`)
  return blocks.map((b) => b.der)
}

export function encodePem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64')
  const lines: string[] = []
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64))
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}
