// Who may call a method: the method's roles against the peer's certificate role (its organizationalUnit, as
// swarm's managers and workers are told apart), then the session's own authorize hook. A pure function so
// the rule reads in one place; the session turns a refusal into FORBIDDEN and a request:refuse event.
import type { PeerIdentity } from '../types.js'
import type { MethodAuthorizer, MethodSpec } from './methods.js'

/** Why a request for `method` is refused, or undefined when it is allowed. */
export function accessRefusal(
  spec: MethodSpec,
  method: string,
  identity: PeerIdentity | undefined,
  authorizer: MethodAuthorizer | undefined,
): { message: string; cause?: unknown } | undefined {
  if (spec.roles !== undefined) {
    const role = identity?.organizationalUnit
    if (role === undefined || !spec.roles.includes(role)) {
      return {
        message: `method ${method} is allowed for ${spec.roles.join(', ') || 'no role'}; the peer${
          identity ? ` ${identity.commonName}` : ''
        } has ${role === undefined ? 'no role' : `role ${role}`}`,
      }
    }
  }
  if (authorizer) {
    try {
      if (authorizer(identity, method) === false) {
        return { message: `method ${method} is not allowed for this peer` }
      }
    } catch (error) {
      return {
        message: `method ${method} is not allowed: ${(error as Error)?.message ?? error}`,
        cause: error,
      }
    }
  }
  return undefined
}
