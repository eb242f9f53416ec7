// No manager process may outlive the test file that started it. Session 9's two full runs each left a chaos
// manager behind: full-disk.test.ts's first cluster was never destroyed, and the harness's `exit` handler never
// ran because vitest ends its workers with SIGTERM (a signal death runs no `exit` handler). So:
// - every manager is started through `setpriv --pdeathsig SIGKILL` (util-linux; it sets the parent-death
//   signal and execs, so the pid stays the manager's): the kernel kills it when the worker that started it
//   dies, however it dies (SIGTERM, SIGKILL, a crash);
// - every process started is tracked, and the chaos project's setup file (no-leftovers.ts) fails the file
//   if one still runs after the file's own hooks, then kills it;
// - once the file is over (or its cluster destroyed), starting a manager throws: a test body that goes on
//   after its timeout cannot start one behind the hooks' back.
import type { ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p))
if (!SETPRIV && process.env.SWARMKIT_CI === '1')
  throw new Error(
    'the chaos harness needs setpriv (util-linux) in CI, to bind its managers to the test worker',
  )

/** `command args` made to get SIGKILL when the calling process (thread) dies; same pid (setpriv execs). */
export function deathBound(command: string, args: readonly string[]): [string, string[]] {
  return SETPRIV ? [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', command, ...args]] : [command, [...args]]
}

interface Started {
  readonly name: string
  readonly proc: ChildProcess
}

const started: Started[] = []
let closed: string | undefined

/** Throws if no process may be started any more (the file is over). */
export function checkMayStart(name: string): void {
  if (closed) throw new Error(`${name} not started: ${closed}`)
}

/** Records a process just started, so that it can be checked and killed at the end of the file. */
export function track(name: string, proc: ChildProcess): void {
  started.push({ name, proc })
}

const alive = (p: ChildProcess) => p.exitCode === null && p.signalCode === null

/** The tracked processes still running: name and pid. */
export function survivors(): { name: string; pid: number | undefined }[] {
  return started.filter((s) => alive(s.proc)).map((s) => ({ name: s.name, pid: s.proc.pid }))
}

/** From now on nothing may be started (`why` says why); kills what still runs and waits until it is gone. */
export async function closeAll(why: string): Promise<void> {
  closed = why
  await Promise.all(
    started
      .filter((s) => alive(s.proc))
      .map(
        (s) =>
          new Promise<void>((resolve) => {
            s.proc.once('exit', () => resolve())
            if (!alive(s.proc)) return resolve()
            s.proc.kill('SIGCONT')
            s.proc.kill('SIGKILL')
          }),
      ),
  )
}

// Last resort for a worker that exits normally; a signal death is covered by the parent-death signal.
process.on('exit', () => {
  for (const s of started) {
    try {
      if (alive(s.proc)) s.proc.kill('SIGKILL')
    } catch {
      // gone
    }
  }
})
