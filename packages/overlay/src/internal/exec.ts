// Running iproute2 and nft, and checking this process's capabilities: shared by the Linux driver and the kernel
// routing mesh.
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { OverlayError } from '../errors.js'

const CAP_NET_ADMIN = 12n
const CAP_SYS_ADMIN = 21n

/** A runner of `file` with `args` (and `input` on stdin) that resolves with stdout, at most `maxOutput` bytes. */
export function execRunner<F extends string>(
  maxOutput: number,
): (file: F, args: string[], options?: { signal?: AbortSignal; input?: string }) => Promise<string> {
  return (file, args, options) =>
    new Promise((resolve, reject) => {
      const child = execFile(
        file,
        args,
        { maxBuffer: maxOutput, timeout: 30_000, signal: options?.signal, encoding: 'utf8' },
        (err, stdout, stderr) => {
          if (err) {
            const e = err as NodeJS.ErrnoException & { stderr?: string }
            e.stderr = String(stderr ?? '').slice(0, 2000)
            reject(e)
          } else resolve(stdout)
        },
      )
      if (options?.input !== undefined) child.stdin?.end(options.input)
    })
}

/**
 * Which of CAP_NET_ADMIN and (when `needSysAdmin`) CAP_SYS_ADMIN this process lacks, from its effective set in
 * /proc/self/status. Throws `PERMISSION_DENIED` when that cannot be read.
 */
export async function missingCapabilities(needSysAdmin: boolean): Promise<string[]> {
  let caps = 0n
  try {
    const status = await readFile('/proc/self/status', 'utf8')
    const m = /^CapEff:\s*([0-9a-f]{1,16})$/m.exec(status.slice(0, 64 * 1024))
    if (m) caps = BigInt(`0x${m[1]}`)
  } catch (err) {
    throw new OverlayError('PERMISSION_DENIED', 'cannot read this process capabilities', { cause: err })
  }
  return [
    ...((caps >> CAP_NET_ADMIN) & 1n ? [] : ['CAP_NET_ADMIN']),
    ...(needSysAdmin && !((caps >> CAP_SYS_ADMIN) & 1n) ? ['CAP_SYS_ADMIN'] : []),
  ]
}
