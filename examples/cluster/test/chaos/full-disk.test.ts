import { it } from 'vitest'
import { fullDisk, missing } from './enospc.js'

it.skipIf(missing !== undefined)(
  'fails writes clearly while the disk is full, loses nothing acknowledged, and takes writes after a restart once space returns',
  () => fullDisk(true),
  180_000,
)
