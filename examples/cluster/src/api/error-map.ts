// How a failure from the store, scheduler, raft or pki becomes a Docker-style HTTP error (moby's status codes
// and words): one mapping for every route, applied by the router.

import { isOverlayError } from '@swarmkit/overlay'
import * as pki from '@swarmkit/pki'
import { isRaftError } from '@swarmkit/raft'
import { isSchedulerError } from '@swarmkit/scheduler'
import { isStoreError } from '@swarmkit/store'
import { ApiError, MESSAGES } from '../errors.js'

const ALLOCATION_CODES = new Set(['IN_USE', 'OUT_OF_RANGE', 'SUBNET_OVERLAP'])

export function storeError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err
  if (isStoreError(err)) {
    const code = err.code
    if (code === 'NOT_FOUND') return new ApiError(404, err.message)
    if (code === 'NAME_CONFLICT' || code === 'EXISTS') return new ApiError(409, err.message)
    if (code === 'SEQUENCE') return new ApiError(500, MESSAGES.outOfSequence)
    if (code === 'IN_USE') return new ApiError(403, err.message)
    if (code === 'INVALID_ARGUMENT') return new ApiError(400, err.message)
    if (code === 'LOCKED') return new ApiError(503, err.message)
    return new ApiError(503, `rpc error: code = Unavailable desc = ${err.message}`)
  }
  if (isSchedulerError(err)) return new ApiError(err.code === 'NOT_FOUND' ? 404 : 400, err.message)
  if (isRaftError(err)) {
    if (err.code === 'NO_LEADER') return new ApiError(503, MESSAGES.noLeader)
    return new ApiError(503, `rpc error: code = Unavailable desc = ${err.message}`)
  }
  if (pki.isPkiError(err)) return new ApiError(400, err.message)
  // What a request asked the allocators for (a published port or subnet that is taken, an address outside a
  // network): the client's to change, InvalidArgument in swarm. A data-plane failure stays a 500.
  if (isOverlayError(err) && ALLOCATION_CODES.has(err.code)) return new ApiError(400, err.message)
  return undefined
}
