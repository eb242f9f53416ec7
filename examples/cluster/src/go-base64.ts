// What Go's `encoding/json` says about a `[]byte` field whose string is not standard base64 (moby decodes a
// secret's or config's `Data` that way), so that this daemon refuses the same input with the same words.

const ALPHABET = /[A-Za-z0-9+/]/

/**
 * Go's `base64.StdEncoding` error for `text` ("illegal base64 data at input byte N", N a byte offset as Go
 * counts it), or undefined when Go would decode it. Line breaks are skipped as Go skips them; padding is
 * required.
 */
export function goBase64Error(text: string): string | undefined {
  const src = Buffer.from(text, 'utf8')
  const bad = (at: number) => `illegal base64 data at input byte ${at}`
  const isBreak = (c: number | undefined) => c === 0x0a || c === 0x0d
  const valid = (c: number) => c < 0x80 && ALPHABET.test(String.fromCharCode(c))
  let si = 0
  // One quantum of four characters at a time, as Go's decodeQuantum reads them.
  while (si < src.length) {
    for (let j = 0; j < 4; j++) {
      if (si === src.length) {
        if (j === 0) return undefined
        return bad(si - j)
      }
      const c = src[si++]!
      if (valid(c)) continue
      if (isBreak(c)) {
        j--
        continue
      }
      if (c !== 0x3d) return bad(si - 1)
      // Padding: only in the third or fourth place, then nothing but line breaks.
      if (j < 2) return bad(si - 1)
      if (j === 2) {
        while (si < src.length && isBreak(src[si])) si++
        if (si === src.length) return bad(src.length)
        if (src[si] !== 0x3d) return bad(si - 1)
        si++
      }
      while (si < src.length && isBreak(src[si])) si++
      return si < src.length ? bad(si) : undefined
    }
  }
  return undefined
}
