// The chaos project's setup file: after every other hook of a test file, no process the harness started may
// still run. One that does fails the file (named, with its pid), and is killed; nothing starts after this.
import { afterAll, expect } from 'vitest'
import { closeAll, survivors } from './process-guard.js'

afterAll(async () => {
  const left = survivors()
  await closeAll('the test file is over')
  expect(left, 'manager processes still running after the test file (killed now)').toEqual([])
})
