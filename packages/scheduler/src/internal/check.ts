// Argument errors in one style across the package: "`name` must …" (a programmer's mistake, so a TypeError
// or RangeError naming the argument). Each package keeps its own copy: packages may not import each other's
// internals.

/** A TypeError for argument `name`: "`name` must `what`" (e.g. `typeError('fn', 'be a function')`). */
export function typeError(name: string, what: string): TypeError {
  return new TypeError(`${name} must ${what}`)
}

/** A RangeError for argument `name`: "`name` must `what`" (e.g. `rangeError('ms', 'be >= 0')`). */
export function rangeError(name: string, what: string): RangeError {
  return new RangeError(`${name} must ${what}`)
}
