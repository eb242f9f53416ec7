import { it } from 'vitest'
import { fullDisk, missing } from './enospc.js'

it.skipIf(missing !== undefined)(
  'fails writes clearly while the disk is full, takes them again in the same process once space returns, and loses nothing acknowledged',
  () => fullDisk(),
  180_000,
)
