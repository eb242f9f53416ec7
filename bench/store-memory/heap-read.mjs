// Reads a V8 .heapsnapshot of any size: the file is streamed, its `nodes` and `edges` arrays go straight into
// typed arrays and its strings are parsed one by one, so a snapshot of a 2 GB manager (several GB of JSON, more
// than one JavaScript string can hold) is read in a few hundred MB. Returns the same shape as
// `JSON.parse(file)` for what heap-top.mjs uses: { snapshot: { meta }, nodes, edges, strings }.
import { closeSync, openSync, readSync } from 'node:fs'

const CHUNK = 1 << 24

export function readHeapSnapshot(file) {
  const fd = openSync(file, 'r')
  const buf = Buffer.allocUnsafe(CHUNK)
  let len = 0
  let pos = 0
  let eof = false
  const fill = () => {
    if (pos > 0) {
      buf.copy(buf, 0, pos, len)
      len -= pos
      pos = 0
    }
    if (eof) return false
    if (len === CHUNK) throw new Error(`${file}: a string longer than ${CHUNK} bytes`)
    const n = readSync(fd, buf, len, CHUNK - len, null)
    if (n === 0) eof = true
    len += n
    return n > 0
  }
  const peek = () => {
    if (pos >= len && !fill()) return -1
    return buf[pos]
  }
  /** Reads up to and including `token`, returns what came before it. */
  const until = (token) => {
    const t = Buffer.from(token)
    const parts = []
    for (;;) {
      const at = buf.indexOf(t, pos)
      if (at >= 0 && at + t.length <= len) {
        parts.push(buf.toString('latin1', pos, at))
        pos = at + t.length
        return parts.join('')
      }
      // Keep a tail that may hold the start of the token.
      const keep = Math.max(pos, len - t.length)
      parts.push(buf.toString('latin1', pos, keep))
      pos = keep
      if (!fill()) throw new Error(`${file}: ${token} not found`)
    }
  }
  const { snapshot } = JSON.parse(`${until('"nodes":[').replace(/,\s*$/, '')}}`)
  const numbers = (count) => {
    let out = new Uint32Array(count > 0 ? count : 1 << 20)
    let n = 0
    let v = 0
    let inNum = false
    for (;;) {
      if (pos >= len && !fill()) throw new Error(`${file}: truncated`)
      const c = buf[pos++]
      if (c >= 48 && c <= 57) {
        v = v * 10 + (c - 48)
        inNum = true
      } else {
        if (inNum) {
          if (n === out.length) {
            const bigger = new Uint32Array(out.length * 2)
            bigger.set(out)
            out = bigger
          }
          out[n++] = v
          v = 0
          inNum = false
        }
        if (c === 93) return out.subarray(0, n) // ]
      }
    }
  }
  const nodes = numbers(snapshot.node_count * snapshot.meta.node_fields.length)
  until('"edges":[')
  const edges = numbers(snapshot.edge_count * snapshot.meta.edge_fields.length)
  until('"strings":[')
  const strings = []
  for (;;) {
    let c = peek()
    while (c === 44 || c === 10 || c === 13 || c === 32) {
      pos++
      c = peek()
    }
    if (c === 93 || c === -1) break
    if (c !== 34) throw new Error(`${file}: a string expected at ${pos}`)
    // One string literal: find its closing quote (not escaped), then JSON.parse it.
    let end = pos + 1
    let escaped = false
    let plain = true
    for (;;) {
      if (end >= len) {
        const off = end - pos
        if (!fill()) throw new Error(`${file}: truncated string`)
        end = pos + off
        continue
      }
      const b = buf[end]
      if (escaped) escaped = false
      else if (b === 92) {
        escaped = true
        plain = false
      } else if (b === 34) break
      else if (b >= 128) plain = false
      end++
    }
    strings.push(
      plain ? buf.toString('latin1', pos + 1, end) : JSON.parse(buf.toString('utf8', pos, end + 1)),
    )
    pos = end + 1
  }
  closeSync(fd)
  return { snapshot, nodes, edges, strings }
}
