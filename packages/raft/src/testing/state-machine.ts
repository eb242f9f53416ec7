import { afterEach, describe, expect, it } from 'vitest'
import type { StateMachine } from '../node.js'

/** How the `StateMachine` compliance suite gets machines and commands to feed them. */
export interface StateMachineFactory {
  /** A new machine in its initial state. */
  create(): StateMachine | Promise<StateMachine>
  /**
   * At least 4 valid commands, in log order, that change the state: the suite applies them at indexes 1, 2, …
   * (a machine may embed anything it needs, such as a proposer id or time, in the commands themselves).
   */
  commands(): readonly Uint8Array[] | Promise<readonly Uint8Array[]>
  /**
   * The state as a comparable value (default: the snapshot bytes). Override when a snapshot may encode equal
   * states differently (for example, map order).
   */
  state?(machine: StateMachine): unknown | Promise<unknown>
}

async function applyAll(m: StateMachine, commands: readonly Uint8Array[], from: number, to: number) {
  const results: unknown[] = []
  for (let i = from; i < to; i++) results.push(await m.apply(commands[i]!, i + 1))
  return results
}

/**
 * The contract a raft `StateMachine` keeps, as a vitest suite: applying is deterministic (same commands, same
 * results and state on every member), `snapshot()` captures the state as of the call, and `restore()` replaces
 * the whole state. Every implementation runs it:
 *
 * ```ts
 * import { stateMachineCompliance } from '@swarmkit/raft/testing'
 * stateMachineCompliance('kv', { create: () => kv(), commands: () => ['a=1', 'b=2', 'a=3', 'c=4'].map(enc) })
 * ```
 */
export function stateMachineCompliance(name: string, factory: StateMachineFactory): void {
  if (typeof name !== 'string') throw new TypeError('name must be a string')
  if (typeof factory?.create !== 'function' || typeof factory.commands !== 'function')
    throw new TypeError('factory must have create() and commands()')
  const state = async (m: StateMachine): Promise<unknown> =>
    factory.state ? factory.state(m) : Buffer.from(await m.snapshot()).toString('hex')

  describe(`${name}: StateMachine compliance`, () => {
    it('reaches the same results and state on every member that applies the same commands', async () => {
      const commands = await factory.commands()
      expect(commands.length).toBeGreaterThanOrEqual(4)
      const a = await factory.create()
      const b = await factory.create()
      const ra = await applyAll(a, commands, 0, commands.length)
      const rb = await applyAll(b, commands, 0, commands.length)
      expect(rb).toEqual(ra)
      expect(await state(b)).toEqual(await state(a))
      expect(await state(a)).not.toEqual(await state(await factory.create()))
    })

    it('restores a snapshot into the state it was taken in, replacing what was there', async () => {
      const commands = await factory.commands()
      const half = Math.floor(commands.length / 2)
      const source = await factory.create()
      await applyAll(source, commands, 0, half)
      const snap = await source.snapshot()
      expect(snap).toBeInstanceOf(Uint8Array)
      const target = await factory.create()
      await applyAll(target, commands, 0, commands.length)
      await target.restore(snap)
      expect(await state(target)).toEqual(await state(source))
      const empty = await factory.create()
      await empty.restore(await (await factory.create()).snapshot())
      expect(await state(empty)).toEqual(await state(await factory.create()))
    })

    it('goes on from a restored snapshot exactly as the member that took it', async () => {
      const commands = await factory.commands()
      const half = Math.floor(commands.length / 2)
      const leader = await factory.create()
      await applyAll(leader, commands, 0, half)
      const follower = await factory.create()
      await follower.restore(await leader.snapshot())
      const rl = await applyAll(leader, commands, half, commands.length)
      const rf = await applyAll(follower, commands, half, commands.length)
      expect(rf).toEqual(rl)
      expect(await state(follower)).toEqual(await state(leader))
    })

    it('captures the state as of the snapshot() call, even when later applies run before it resolves', async () => {
      const commands = await factory.commands()
      const half = Math.floor(commands.length / 2)
      const m = await factory.create()
      await applyAll(m, commands, 0, half)
      const pending = m.snapshot()
      await applyAll(m, commands, half, commands.length)
      const snap = await pending
      const expected = await factory.create()
      await applyAll(expected, commands, 0, half)
      const restored = await factory.create()
      await restored.restore(snap)
      expect(await state(restored)).toEqual(await state(expected))
    })
  })
}

/** What the proposer compliance suite needs: a proposer that replicates into the machine it is given. */
export interface ProposerFixture {
  /** Replicates `command`; resolves, once this member has applied it, with what `apply` returned for it. */
  propose(command: Uint8Array, options?: { signal?: AbortSignal }): Promise<unknown>
  /** Stops what the fixture started. */
  close(): Promise<void>
}

/**
 * The proposer side of the contract, as a vitest suite: `propose` resolves only after the command was applied
 * on this member, with that application's result; every command applies once, at increasing indexes; an aborted
 * proposal rejects. `factory` wires the given machine under a proposer (a `RaftNode` and
 * `(c, o) => node.propose(c, o).then((r) => r.result)`, the shape `@swarmkit/store` takes):
 *
 * ```ts
 * import { proposerCompliance } from '@swarmkit/raft/testing'
 * proposerCompliance('single RaftNode', async (stateMachine) => startOneNode(stateMachine))
 * ```
 */
export function proposerCompliance(
  name: string,
  factory: (stateMachine: StateMachine) => ProposerFixture | Promise<ProposerFixture>,
): void {
  if (typeof name !== 'string') throw new TypeError('name must be a string')
  if (typeof factory !== 'function') throw new TypeError('factory must be a function')

  describe(`${name}: proposer compliance`, () => {
    const open: ProposerFixture[] = []
    afterEach(async () => {
      for (const f of open.splice(0)) await f.close()
    })

    function recorder() {
      const applied: { text: string; index: number }[] = []
      const machine: StateMachine = {
        apply(command, index) {
          const text = new TextDecoder().decode(command)
          applied.push({ text, index })
          return { text, index, count: applied.length }
        },
        snapshot: () => new TextEncoder().encode(JSON.stringify(applied)),
        restore(snapshot) {
          applied.splice(0, applied.length, ...JSON.parse(new TextDecoder().decode(snapshot)))
        },
      }
      return { applied, machine }
    }

    async function start(machine: StateMachine): Promise<ProposerFixture> {
      const f = await factory(machine)
      open.push(f)
      return f
    }

    it('resolves with the result of applying the command, after it was applied here', async () => {
      const { applied, machine } = recorder()
      const f = await start(machine)
      const result = (await f.propose(new TextEncoder().encode('one'))) as { text: string; index: number }
      expect(result.text).toBe('one')
      expect(applied.some((a) => a.text === 'one' && a.index === result.index)).toBe(true)
    })

    it('applies concurrent proposals once each, at increasing indexes, each resolving with its own result', async () => {
      const { applied, machine } = recorder()
      const f = await start(machine)
      const texts = Array.from({ length: 20 }, (_, i) => `c${i}`)
      const results = (await Promise.all(texts.map((t) => f.propose(new TextEncoder().encode(t))))) as {
        text: string
      }[]
      expect(results.map((r) => r.text)).toEqual(texts)
      const mine = applied.filter((a) => texts.includes(a.text))
      expect(mine.map((a) => a.text).sort()).toEqual([...texts].sort())
      for (let i = 1; i < applied.length; i++)
        expect(applied[i]!.index).toBeGreaterThan(applied[i - 1]!.index)
    })

    it('rejects a proposal whose signal is already aborted', async () => {
      const { machine } = recorder()
      const f = await start(machine)
      await expect(
        f.propose(new TextEncoder().encode('never'), { signal: AbortSignal.abort() }),
      ).rejects.toBeDefined()
    })
  })
}
