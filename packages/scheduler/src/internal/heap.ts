/**
 * A binary min-heap of small integer ids ordered by three numeric keys, then by id. Keys live in typed
 * arrays owned by the heap so that comparisons are plain array reads; the caller changes a key of the top
 * element and calls `fixTop()`.
 *
 * Not shared with transport's timer heap (objects ordered by due time): the structures differ, and the
 * scheduler may import only `@swarmkit/store`.
 */
export class KeyHeap {
  readonly k0: Float64Array
  readonly k1: Float64Array
  readonly k2: Float64Array
  readonly #heap: Int32Array
  #size = 0

  constructor(capacity: number) {
    this.k0 = new Float64Array(capacity)
    this.k1 = new Float64Array(capacity)
    this.k2 = new Float64Array(capacity)
    this.#heap = new Int32Array(capacity)
  }

  get size(): number {
    return this.#size
  }

  #less(a: number, b: number): boolean {
    const k0 = this.k0
    if (k0[a] !== k0[b]) return (k0[a] as number) < (k0[b] as number)
    const k1 = this.k1
    if (k1[a] !== k1[b]) return (k1[a] as number) < (k1[b] as number)
    const k2 = this.k2
    if (k2[a] !== k2[b]) return (k2[a] as number) < (k2[b] as number)
    return a < b
  }

  /** Adds ids without ordering them; call `heapify()` once after the last. */
  pushUnordered(id: number): void {
    this.#heap[this.#size++] = id
  }

  heapify(): void {
    for (let i = (this.#size >> 1) - 1; i >= 0; i--) this.#down(i)
  }

  top(): number {
    return this.#heap[0] as number
  }

  /** Restores order after the top's keys grew. */
  fixTop(): void {
    this.#down(0)
  }

  pop(): number {
    const h = this.#heap
    const top = h[0] as number
    this.#size--
    if (this.#size > 0) {
      h[0] = h[this.#size] as number
      this.#down(0)
    }
    return top
  }

  #down(i: number): void {
    const h = this.#heap
    const n = this.#size
    const id = h[i] as number
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      let c = l
      if (r < n && this.#less(h[r] as number, h[l] as number)) c = r
      if (!this.#less(h[c] as number, id)) break
      h[i] = h[c] as number
      i = c
    }
    h[i] = id
  }
}
