/**
 * A loopback prefix 127.a.b of this test file's own. A node restarted from its state directory listens again on
 * the port it had; on 127.0.0.1 that port may meanwhile be the source port of another program's outgoing
 * connection (the kernel gives those 127.0.0.1 and ports from the same ephemeral range), and the restart fails
 * with "in use". Outgoing connections to loopback never take a source address other than 127.0.0.1.
 */
export function privateLoopbackPrefix(): string {
  return `127.${1 + Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`
}
