// A set of integers in [0, size), size up to 2^48, stored as lazily created 65536-bit chunks so a huge range
// (an IPv6 /64, a VNI space) costs memory only for what is used. Two search orders:
//   next(): next-fit from a rotating cursor (addresses: a released address is not handed out again until the
//           cursor has gone round, so stale ARP and connection state age out), and
//   lowest(): the lowest free integer (subnets and VNIs: deterministic, so a rebuilt allocator continues
//           exactly as the original would).

const CHUNK_SHIFT = 16
const CHUNK_BITS = 1 << CHUNK_SHIFT
const CHUNK_WORDS = CHUNK_BITS >>> 5
export const MAX_BITMAP_SIZE = 2 ** 48

interface Chunk {
  words: Uint32Array
  used: number
}

export class Bitmap {
  readonly size: number
  // Chunk 0 lives in a field (most bitmaps — a /24's addresses — have only that one); the rest in a Map.
  private c0: Chunk | undefined
  private readonly chunks = new Map<number, Chunk>()
  private readonly lastChunk: number
  private count = 0
  private cursor = 0
  private lowHint = 0

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size < 0 || size > MAX_BITMAP_SIZE) throw new RangeError('bitmap size')
    this.size = size
    this.lastChunk = size === 0 ? 0 : Math.floor((size - 1) / CHUNK_BITS)
  }

  get used(): number {
    return this.count
  }

  has(i: number): boolean {
    const c = this.get(Math.floor(i / CHUNK_BITS))
    if (c === undefined) return false
    const bit = i % CHUNK_BITS
    return (c.words[bit >>> 5]! & (1 << (bit & 31))) !== 0
  }

  /** Marks `i` used; false if it already was. */
  set(i: number): boolean {
    const ci = Math.floor(i / CHUNK_BITS)
    let c = this.get(ci)
    if (c === undefined) {
      // A bitmap smaller than a chunk (a /24's 256 addresses) gets only the words it needs.
      c = { words: new Uint32Array(Math.min(CHUNK_WORDS, Math.ceil(this.size / 32))), used: 0 }
      if (ci === 0) this.c0 = c
      else this.chunks.set(ci, c)
    }
    const bit = i % CHUNK_BITS
    const w = bit >>> 5
    const m = 1 << (bit & 31)
    if ((c.words[w]! & m) !== 0) return false
    c.words[w]! |= m
    c.used++
    this.count++
    if (i === this.lowHint) this.lowHint++
    return true
  }

  /** Marks `i` free; false if it already was. */
  clear(i: number): boolean {
    const ci = Math.floor(i / CHUNK_BITS)
    const c = this.get(ci)
    if (c === undefined) return false
    const bit = i % CHUNK_BITS
    const w = bit >>> 5
    const m = 1 << (bit & 31)
    if ((c.words[w]! & m) === 0) return false
    c.words[w]! &= ~m
    c.used--
    this.count--
    if (i < this.lowHint) this.lowHint = i
    return true
  }

  /** Takes the next free integer at or after the cursor (wrapping); -1 when full. */
  next(): number {
    if (this.count >= this.size) return -1
    let i = this.findFrom(this.cursor)
    if (i < 0) i = this.findFrom(0)
    if (i < 0) return -1
    this.set(i)
    this.cursor = i + 1 >= this.size ? 0 : i + 1
    return i
  }

  /** The lowest free integer at or after `from`, without taking it; -1 if none. */
  firstFree(from = 0): number {
    if (this.count >= this.size) return -1
    return this.findFrom(Math.max(from, this.lowHint))
  }

  /** Takes the lowest free integer; -1 when full. */
  lowest(): number {
    if (this.count >= this.size) return -1
    const i = this.findFrom(this.lowHint)
    if (i < 0) return -1
    this.set(i)
    this.lowHint = i + 1
    return i
  }

  /** Restarts the next-fit cursor just after the highest used integer (used after a rebuild). */
  resetCursor(): void {
    let hi = -1
    for (const [ci, c] of this.all()) {
      if (c.used === 0) continue
      for (let w = c.words.length - 1; w >= 0; w--) {
        const word = c.words[w]!
        if (word !== 0) {
          const cand = ci * CHUNK_BITS + w * 32 + (31 - Math.clz32(word))
          if (cand > hi) hi = cand
          break
        }
      }
    }
    this.cursor = hi + 1 >= this.size ? 0 : hi + 1
    this.lowHint = 0
  }

  /** Every used integer in ascending order. */
  *values(): Generator<number> {
    for (const [ci, c] of this.all().sort((a, b) => a[0] - b[0])) {
      if (c.used === 0) continue
      for (let w = 0; w < c.words.length; w++) {
        let word = c.words[w]!
        while (word !== 0) {
          const low = word & -word
          yield ci * CHUNK_BITS + w * 32 + (31 - Math.clz32(low))
          word ^= low
        }
      }
    }
  }

  private get(ci: number): Chunk | undefined {
    return ci === 0 ? this.c0 : this.chunks.get(ci)
  }

  private all(): Array<[number, Chunk]> {
    const out = [...this.chunks]
    if (this.c0 !== undefined) out.push([0, this.c0])
    return out
  }

  // The first free integer in [from, size), or -1.
  private findFrom(from: number): number {
    if (from >= this.size) return -1
    let ci = Math.floor(from / CHUNK_BITS)
    let bit = from % CHUNK_BITS
    for (; ci <= this.lastChunk; ci++, bit = 0) {
      const c = this.get(ci)
      if (c === undefined) {
        const i = ci * CHUNK_BITS + bit
        return i < this.size ? i : -1
      }
      if (c.used === CHUNK_BITS) continue
      const words = c.words
      let w = bit >>> 5
      // The first word may be partly before `from`: mask off the bits below it.
      let word = words[w]! | ((1 << (bit & 31)) - 1)
      for (;;) {
        if (word !== -1 && word >>> 0 !== 0xffffffff) {
          const free = ~word & (word + 1)
          const i = ci * CHUNK_BITS + w * 32 + (31 - Math.clz32(free))
          return i < this.size ? i : -1
        }
        if (++w >= words.length) break
        word = words[w]!
      }
    }
    return -1
  }
}
