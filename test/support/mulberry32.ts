// The seeded generator the test suites share (mulberry32): tiny, and the same sequence on every platform,
// so a fuzz or chaos run replays from its printed seed. Test-only, so it lives beside the workspace tests
// rather than in a package: pki and overlay may import no other swarmkit package, and this is no package's
// API. (The product's own seeded generator is @swarmkit/transport's seededRandom, an sfc32.)

/** A seeded uniform [0, 1) generator. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
