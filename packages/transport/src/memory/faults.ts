// Fault injection for the memory network: the faults a test asks for (drop, duplicate, delay, reorder),
// checked and normalized once so the per-frame path only compares numbers.

/** Faults applied to frames in flight (network-wide with `setFaults`, per direction with `setLinkFaults`). */
export interface LinkFaults {
  /** Probability in [0, 1] that a frame is lost. */
  readonly dropRate?: number | undefined
  /** Probability in [0, 1] that a frame is delivered twice. */
  readonly duplicateRate?: number | undefined
  /** Delay of each frame in ms: a fixed number, or `[min, max]` drawn uniformly per frame. */
  readonly delayMs?: number | readonly [number, number] | undefined
  /** Let frames overtake each other (each draws its own delay); otherwise a link stays first-in first-out. */
  readonly reorder?: boolean | undefined
}

/** Faults as the network applies them: rates, a delay range, and whether frames may overtake. */
export interface Faults {
  dropRate: number
  duplicateRate: number
  delayMin: number
  delayMax: number
  reorder: boolean
}

/** No faults at all (the common case, which takes the fast path). */
export const NO_FAULTS: Faults = { dropRate: 0, duplicateRate: 0, delayMin: 0, delayMax: 0, reorder: false }

/** Whether any fault is on (else frames skip the PRNG). */
export function hasFaults(f: Faults): boolean {
  return f.dropRate > 0 || f.duplicateRate > 0 || f.delayMax > 0 || f.reorder
}

/** Checks `faults` (named `name` in errors) and turns them into the form the network applies. */
export function normalizeFaults(faults: LinkFaults, name: string): Faults {
  if (typeof faults !== 'object' || faults === null) throw new TypeError(`${name} must be an object or null`)
  const rate = (v: number | undefined, field: string): number => {
    if (v === undefined) return 0
    if (typeof v !== 'number' || !(v >= 0 && v <= 1))
      throw new RangeError(`${name}.${field} must be in [0, 1]`)
    return v
  }
  let delayMin = 0
  let delayMax = 0
  const d = faults.delayMs
  if (typeof d === 'number') {
    if (!Number.isFinite(d) || d < 0) throw new RangeError(`${name}.delayMs must be a finite number >= 0`)
    delayMin = delayMax = d
  } else if (Array.isArray(d)) {
    const [lo, hi] = d as readonly [number, number]
    if (
      d.length !== 2 ||
      typeof lo !== 'number' ||
      typeof hi !== 'number' ||
      !Number.isFinite(lo) ||
      !Number.isFinite(hi) ||
      lo < 0 ||
      hi < lo
    ) {
      throw new RangeError(`${name}.delayMs must be [min, max] with 0 <= min <= max`)
    }
    delayMin = lo
    delayMax = hi
  } else if (d !== undefined) {
    throw new TypeError(`${name}.delayMs must be a number or [min, max]`)
  }
  if (faults.reorder !== undefined && typeof faults.reorder !== 'boolean') {
    throw new TypeError(`${name}.reorder must be a boolean`)
  }
  return {
    dropRate: rate(faults.dropRate, 'dropRate'),
    duplicateRate: rate(faults.duplicateRate, 'duplicateRate'),
    delayMin,
    delayMax,
    reorder: faults.reorder ?? false,
  }
}
