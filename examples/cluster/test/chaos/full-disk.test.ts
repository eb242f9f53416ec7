import { it } from 'vitest'
import { fullDisk, fullLeaderDisk, missing } from './enospc.js'

it.skipIf(missing !== undefined)(
  'fails writes clearly while the disk is full, takes them again in the same process once space returns, and loses nothing acknowledged',
  () => fullDisk(),
  180_000,
)

it.skipIf(missing !== undefined)(
  "hands leadership over when the leader's disk fills: writes go on through the others, and nothing acknowledged is lost",
  () => fullLeaderDisk(),
  240_000,
)
