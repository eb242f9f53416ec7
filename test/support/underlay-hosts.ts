// Hosts for kernel tests on one machine: an underlay namespace with a bridge, and per host a namespace wired to
// it by a veth, addressed in 198.18.0.0/15 (a benchmarking range, used only inside these namespaces). Shared by
// the overlay package's lab and the cluster's namespace hosts; each caller removes what it made.

/** Runs a command and fails with its stderr (each caller's own runner, with its own timeouts). */
export type MustRun = (file: string, args: string[]) => Promise<string>

/** Makes `underlay` with bridge `ubr` and hosts `${tag}-h1..n` on it (eth0 at 198.18.0.i/15, lo up). */
export async function createUnderlayHosts(
  must: MustRun,
  underlay: string,
  tag: string,
  n: number,
): Promise<Array<{ ns: string; address: string }>> {
  await must('ip', ['netns', 'add', underlay])
  await must('ip', ['-n', underlay, 'link', 'add', 'name', 'ubr', 'type', 'bridge'])
  await must('ip', ['-n', underlay, 'link', 'set', 'dev', 'ubr', 'up'])
  const hosts: Array<{ ns: string; address: string }> = []
  for (let i = 1; i <= n; i++) {
    const ns = `${tag}-h${i}`
    const address = `198.18.0.${i}`
    await must('ip', ['netns', 'add', ns])
    await must('ip', [
      '-n',
      underlay,
      'link',
      'add',
      'name',
      `e${i}`,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      ns,
    ])
    await must('ip', ['-n', underlay, 'link', 'set', 'dev', `e${i}`, 'master', 'ubr', 'up'])
    await must('ip', ['-n', ns, 'addr', 'add', `${address}/15`, 'dev', 'eth0'])
    await must('ip', ['-n', ns, 'link', 'set', 'dev', 'eth0', 'up'])
    await must('ip', ['-n', ns, 'link', 'set', 'dev', 'lo', 'up'])
    hosts.push({ ns, address })
  }
  return hosts
}
