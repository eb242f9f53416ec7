/** Wait until `predicate` holds, yielding to the event loop between checks; fails after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean,
  what = 'condition',
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

/** Let queued immediates and promise callbacks run. */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

export const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values)
