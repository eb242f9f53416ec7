let lastConnectionId = 0

export function nextConnectionId(): number {
  return ++lastConnectionId
}
