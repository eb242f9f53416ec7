#!/usr/bin/env node
// Mutation testing for @swarmkit/raft: injects realistic bugs one at a time into a scratch copy of the
// repository, runs the fast tests that should catch each, and reports which tests did. The working tree is
// never modified (a mutant only ever touches the scratch copy, which is removed on exit, Ctrl-C included).
//
//   npm run mutate:raft                   every mutant
//   npm run mutate:raft -- figure8 wal    only the mutants named (or whose name contains the argument)
//   npm run mutate:raft -- --list         list the mutants
//
// Exit status: 0 when every mutant was caught, 1 otherwise (or when a mutant no longer applies).
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

const CORE = ['test/core.paper.test.ts', 'test/core.scenario.test.ts', 'test/core.membership.test.ts']
const NO_SPACE_TEST = 'test/file-storage-no-space.test.ts'
const NO_SPACE_SIM = 'test/file-storage-no-space-sim.test.ts'
const NO_SPACE_NODE = 'test/node.full-disk.test.ts'
const ZERO_TAIL_TEST = 'test/file-storage-zero-tail.test.ts'

/**
 * Each mutant: a name, what the bug is, edits (file under packages/raft, exact text found once, replacement),
 * and the test files to run.
 */
const mutants = [
  {
    name: 'figure8',
    what: 'a leader commits an earlier-term entry by counting replicas (Figure 8)',
    edits: [
      [
        'src/core.ts',
        'if (q <= log.committed || log.term(q) !== this.term) return false',
        'if (q <= log.committed) return false',
      ],
    ],
    tests: [...CORE, 'test/cluster.test.ts'],
  },
  {
    name: 'vote-changed-in-term',
    what: 'a voter changes its vote within a term (grants whenever it knows no leader)',
    edits: [
      [
        'src/core.ts',
        'this.vote === m.from || (this.vote === null && this.leader === null) || (pre && m.term > this.term)',
        'this.vote === m.from || this.leader === null || (pre && m.term > this.term)',
      ],
    ],
    tests: [...CORE, 'test/core.lease.test.ts'],
  },
  {
    name: 'vote-not-persisted',
    what: 'a vote grant leaves before the vote is persisted',
    edits: [
      [
        'src/core.ts',
        '      m.type === MessageType.PreVote\n    ) {',
        '      m.type === MessageType.PreVote ||\n      m.type === MessageType.VoteResp\n    ) {',
      ],
    ],
    tests: [...CORE, 'test/node.durability.test.ts'],
  },
  {
    name: 'follower-commit',
    what: 'a follower commits up to leaderCommit, not min(leaderCommit, index of last new entry)',
    edits: [['src/internal/log.ts', 'this.commitTo(Math.min(commit, lastNew))', 'this.commitTo(commit)']],
    tests: CORE,
  },
  {
    name: 'wal-no-dsync',
    what: 'WAL segments written without O_DSYNC (durable only in the page cache)',
    edits: [
      [
        'src/internal/wal/segment-files.ts',
        'const SEGMENT_FLAGS = O_RDWR | O_DSYNC',
        'const SEGMENT_FLAGS = O_RDWR',
      ],
      [
        'src/internal/wal/segment-files.ts',
        'const NEW_SEGMENT_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_DSYNC',
        'const NEW_SEGMENT_FLAGS = O_WRONLY | O_CREAT | O_EXCL',
      ],
    ],
    tests: ['test/file-storage-power-loss.test.ts', 'test/file-storage.test.ts'],
  },
  {
    name: 'removed-not-ignored',
    what: 'messages from removed members are not ignored',
    edits: [
      [
        'src/core.ts',
        'if (m.to !== this.id || (this.removed.has(m.from) && this.removalCommitted(m.from))) return',
        'if (m.to !== this.id) return',
      ],
    ],
    tests: [...CORE, 'test/membership.test.ts'],
  },
  {
    name: 'conf-before-noop',
    what: "a membership change is accepted before the new leader's no-op commits",
    edits: [
      [
        'src/core.ts',
        'if (this.log.applied < this.pendingConfIndex || !this.committedInTerm()) {',
        'if (this.log.applied < this.pendingConfIndex) {',
      ],
      ['src/core.ts', '    this.pendingConfIndex = last + 1\n', ''],
    ],
    tests: [...CORE, 'test/membership.test.ts'],
  },
  {
    name: 'conf-from-apply',
    what: 'a restarted node ignores the Config entries in its log until it applies them (bug A)',
    edits: [['src/core.ts', '      this.confs.appended(log.entries)\n', '']],
    tests: [...CORE, 'test/membership.restart.test.ts'],
  },
  {
    name: 'conf-truncation-kept',
    what: 'a truncated, uncommitted Config entry stays in effect',
    edits: [['src/core.ts', '    this.confs.truncatedFrom(from)\n', '']],
    tests: CORE,
  },
  {
    name: 'restart-votes-at-once',
    what: 'a restarted voter grants votes at once, inside a lease it acknowledged (bug B)',
    edits: [['src/core.ts', '      if (this.term > 0) this.restartQuiet = this.electionMin\n', '']],
    tests: [...CORE, 'test/core.lease.test.ts'],
  },
  {
    name: 'prevote-raises-term',
    what: "a pre-vote request raises the receiver's term",
    edits: [
      [
        'src/core.ts',
        'if (m.type === MessageType.PreVote) {\n        // A pre-vote changes no term.',
        'if (m.type === -1) {\n        // A pre-vote changes no term.',
      ],
    ],
    tests: CORE,
  },
  {
    name: 'readindex-no-round',
    what: 'ReadIndex answered without a heartbeat round confirming leadership',
    edits: [['src/core.ts', '    if (this.leaseValid()) {', '    if (true) {']],
    tests: [...CORE, 'test/core.lease.test.ts', 'test/node.test.ts'],
  },
  {
    name: 'lease-too-long',
    what: 'a lease counted from acknowledgements older than the followers promise to wait',
    edits: [
      [
        'src/core.ts',
        'const since = this.ticks - this.electionMin + 2',
        'const since = this.ticks - this.electionMin - 2',
      ],
    ],
    tests: [...CORE, 'test/core.lease.test.ts'],
  },
  {
    name: 'leader-ignores-higher-term',
    what: 'a leader does not step down when it sees a higher term',
    edits: [
      [
        'src/core.ts',
        '        this.becomeFollower(\n          m.term,\n          m.type === MessageType.TimeoutNow',
        "        if (this.role !== 'leader') this.becomeFollower(\n          m.term,\n          m.type === MessageType.TimeoutNow",
      ],
    ],
    tests: CORE,
  },
  {
    name: 'check-quorum-window-ignored',
    what: "CheckQuorum runs on the election timeout whatever checkQuorumTick says (a voter's stall deposes the leader)",
    edits: [
      [
        'src/core.ts',
        'this.checkQuorumTick = Math.max(cq ?? opts.electionTick, opts.electionTick)',
        'this.checkQuorumTick = opts.electionTick',
      ],
    ],
    tests: [...CORE, 'test/core.check-quorum.test.ts'],
  },
  {
    name: 'check-quorum-window-unbounded',
    what: 'a CheckQuorum window below the election timeout is taken as given (a leader deposed sooner than its lease)',
    edits: [
      [
        'src/core.ts',
        'this.checkQuorumTick = Math.max(cq ?? opts.electionTick, opts.electionTick)',
        'this.checkQuorumTick = cq ?? opts.electionTick',
      ],
    ],
    tests: [...CORE, 'test/core.check-quorum.test.ts'],
  },
  {
    name: 'snapshot-keeps-log',
    what: 'installing a snapshot does not reset the log',
    edits: [
      [
        'src/internal/log.ts',
        '    this.entries = []\n    this.snapIndex = index',
        '    this.snapIndex = index',
      ],
    ],
    tests: [...CORE, 'test/snapshot.test.ts'],
  },
  {
    name: 'apply-beyond-commit',
    what: 'entries handed out for apply beyond the commit index',
    edits: [['src/core.ts', 'const applyUpTo = log.committed', 'const applyUpTo = log.lastIndex()']],
    tests: [...CORE, 'test/cluster.test.ts'],
  },
  {
    name: 'leader-counts-undurable',
    what: 'a leader counts its own entries toward a commit before they are durable',
    edits: [
      [
        'src/core.ts',
        '    this.bcastAppend()\n    return first',
        '    this.progress.get(this.id)?.maybeUpdate(log.lastIndex())\n    this.bcastAppend()\n    return first',
      ],
    ],
    tests: [...CORE, 'test/node.durability.test.ts'],
  },
  {
    name: 'read-before-apply',
    what: "a read resolves once its index is committed, before this node's state machine applied it",
    edits: [['src/internal/read-waiters.ts', 'if (s.index <= applied) {', 'if (s.index >= 0) {']],
    tests: ['test/node.slow-apply.test.ts', 'test/node.test.ts'],
  },
  {
    name: 'forward-answer-late',
    what: 'a forwarded proposal is placed at an index the apply pipeline already took up (it never settles)',
    edits: [['src/internal/proposals.ts', 'if (k <= this.taken) {', 'if (k < 0) {']],
    tests: ['test/proposals.test.ts'],
  },
  {
    name: 'removed-member-waits',
    what: 'a removed member keeps its uncommitted proposals waiting for a commit it will never hear of',
    edits: [
      [
        'src/node.ts',
        "    if (core.role !== 'leader' && core.removed.has(this.id)) this.proposals.failUncommitted(core.committed)\n",
        '',
      ],
    ],
    tests: ['test/membership.removed-proposals.test.ts'],
  },
  {
    name: 'read-waits-forever',
    what: 'a read answered beyond what this member saw committed waits with no deadline',
    edits: [
      [
        'src/internal/read-waiters.ts',
        'if (this.waits.length > 0 && this.waits[this.waits.length - 1]!.index > committed) {',
        'if (false) {',
      ],
    ],
    tests: ['test/read-waiters.test.ts'],
  },
  {
    name: 'promote-unheard',
    what: 'a learner is promoted before it ever answered the leader (seed 5240)',
    edits: [['src/internal/conf-changes.ts', 'return match > 0 && match', 'return match >= 0 && match']],
    tests: ['test/membership.promote.test.ts', 'test/membership.test.ts'],
  },
  {
    name: 'apply-backlog-unbounded',
    what: 'the apply pipeline takes every committed entry however far the state machine lags',
    edits: [
      [
        'src/internal/apply-queue.ts',
        'maxCommittedBytes: Math.max(0, this.#maxBytes - this.#bytes),',
        'maxCommittedBytes: Number.MAX_SAFE_INTEGER,',
      ],
      [
        'src/internal/apply-queue.ts',
        'maxCommittedEntries: Math.max(0, this.#maxEntries - this.#entries),',
        'maxCommittedEntries: Number.MAX_SAFE_INTEGER,',
      ],
    ],
    tests: ['test/node.slow-apply.test.ts'],
  },
  {
    name: 'election-restriction',
    what: 'votes compare log length only, not the last term (§5.4.1)',
    edits: [
      [
        'src/internal/log.ts',
        'return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex())',
        'return myTerm >= 0 && lastIndex >= this.lastIndex()',
      ],
    ],
    tests: CORE,
  },
  {
    name: 'forward-duplicate-reanswered',
    what: 'a leader answers a duplicated forward anew (a refusal after an append, or a second append)',
    edits: [['src/core.ts', '    if (!a) return false\n', '    if (a || !a) return false\n']],
    tests: ['test/core.forward-duplicates.test.ts'],
  },
  {
    name: 'enospc-fatal',
    what: 'a write that finds the disk full stops the log for good (no recovery in place)',
    edits: [['src/file-storage.ts', 'if (isNoSpace(e) && !this.#failed) {', 'if (false) {']],
    tests: [NO_SPACE_TEST],
  },
  {
    name: 'enospc-cut-unsynced',
    what: 'the cut-back of a write that found the disk full is not synced (a power cut brings it back)',
    edits: [
      [
        'src/internal/wal/cut-back.ts',
        'await cutFile(files, path, to.segSize)',
        'await files.truncate(path, to.segSize)',
      ],
    ],
    tests: [NO_SPACE_TEST, NO_SPACE_SIM],
  },
  {
    name: 'enospc-accepted-kept',
    what: 'after a refused save the log still validates against what was refused',
    edits: [['src/file-storage.ts', '    this.#accepted.copyFrom(this.#durable)\n', '']],
    tests: [NO_SPACE_TEST, NO_SPACE_SIM],
  },
  {
    name: 'enospc-snapshot-file-ignored',
    what: 'the record of a snapshot whose file found the disk full is written anyway',
    edits: [
      [
        'src/file-storage.ts',
        'if (isNoSpace(e)) p.failure = noSpaceError(this.dir, e)',
        'if (isNoSpace(e)) p.failure = undefined',
      ],
    ],
    tests: [NO_SPACE_TEST],
  },
  {
    name: 'fsync-failure-retried',
    what: 'a failed fsync that says ENOSPC is taken for a full disk and retried (fsyncgate)',
    edits: [
      [
        'src/internal/wal/no-space.ts',
        "if (typeof e === 'object' && e !== null) syncFailures.add(e)",
        'void syncFailures',
      ],
    ],
    tests: [NO_SPACE_TEST],
  },
  {
    name: 'enospc-compaction-races-cut',
    what: 'compaction deletes the segment a batch began in while the batch may still be cut back into it',
    edits: [['src/file-storage.ts', ' &&\n          this.#segments[0]!.seq < this.#batchFrom', '']],
    tests: [NO_SPACE_TEST],
  },
  {
    name: 'full-disk-stops-node',
    what: 'a RaftNode stops for good when its disk is full',
    edits: [
      [
        'src/internal/full-disk.ts',
        "if (!isRaftError(err, 'NO_SPACE') || !host.running()) throw err",
        'throw err',
      ],
    ],
    tests: [NO_SPACE_NODE],
  },
  {
    name: 'full-disk-snapshot-churn',
    what: 'a snapshot that found the disk full is tried again at every apply',
    edits: [['src/internal/applier.ts', '          this.snapshotRefusedAt = index\n', '']],
    tests: [NO_SPACE_NODE],
  },
  {
    name: 'full-disk-reads-wait',
    what: 'reads made while the disk is full wait for it instead of being refused',
    edits: [
      [
        'src/node.ts',
        '    const full = this.disk.refusal()\n    if (full) return Promise.reject(full)\n    const index',
        '    const index',
      ],
    ],
    tests: [NO_SPACE_NODE],
  },
  {
    name: 'full-disk-proposals-wait',
    what: 'proposals made while the disk is full wait for it instead of being refused',
    edits: [
      ['src/node.ts', '    if (full) return Promise.reject(full)\n    const result', '    const result'],
    ],
    tests: [NO_SPACE_NODE],
  },
  {
    name: 'new-member-waits-for-proposal',
    what: 'a member added to an idle cluster is not probed from heartbeat answers (caught up only at the next proposal)',
    edits: [
      [
        'src/core.ts',
        'this.sendAppend(m.from, pr, pr.state === ProgressState.Probe)',
        'this.sendAppend(m.from, pr, false)',
      ],
    ],
    tests: CORE,
  },
  {
    name: 'new-member-unheard',
    what: 'a member added mid-leadership counts as unheard at once (reported unreachable before it could answer)',
    edits: [
      [
        'src/core.ts',
        '      pr.lastHeard = this.ticks\n      pr.recentActive = true',
        '      pr.recentActive = true',
      ],
    ],
    tests: CORE,
  },
  {
    name: 'full-disk-leader-stays',
    what: 'a leader whose disk is full keeps leading (and refusing every proposal)',
    edits: [
      ['src/node.ts', '    if (this.disk.full) this.handOffWhileFull()\n', ''],
      [
        'src/node.ts',
        "        this.emit('storage:full', err)\n        this.handOffWhileFull()\n",
        "        this.emit('storage:full', err)\n",
      ],
    ],
    tests: [NO_SPACE_NODE],
  },
  {
    name: 'timeout-now-waits-for-write',
    what: "a leader's TimeoutNow waits for its own write (so a full disk blocks the hand-over)",
    edits: [['src/core.ts', ' ||\n          m.type === MessageType.TimeoutNow)) ||', ')) ||']],
    tests: [NO_SPACE_NODE, ...CORE],
  },
  {
    name: 'apply-without-slices',
    what: 'a batch of committed entries is applied in one synchronous run (the event loop waits for all of it)',
    edits: [['src/internal/applier.ts', 'if (host.now() - sliceStart >= APPLY_SLICE_MS) {', 'if (false) {']],
    tests: ['test/node.apply-slices.test.ts'],
  },
  {
    name: 'snapshot-read-in-one-checksum',
    what: 'a snapshot file read back is checksummed in one synchronous call (the loop waits for all of it)',
    edits: [
      [
        'src/internal/wal/replay.ts',
        'if ((await crc32cInSlices(buf, 0, 0, buf.length - 4)) !== get32(buf, buf.length - 4)) {',
        'if ((await Promise.resolve(crc32cInSlices(buf, 0, 0, 0)).then(() => crc32c(buf, 0, 0, buf.length - 4))) !== get32(buf, buf.length - 4)) {',
      ],
      [
        'src/internal/wal/replay.ts',
        "import { crc32cInSlices } from './crc32c.js'",
        "import { crc32c, crc32cInSlices } from './crc32c.js'",
      ],
    ],
    tests: ['test/snapshot-file-slices.test.ts'],
  },
  {
    name: 'snapshot-open-not-async',
    what: 'snapshot data is opened through the one-call `open` hook even when `openAsync` is given',
    edits: [
      [
        'src/internal/wal/replay.ts',
        'data = limits.openAsync ? await limits.openAsync(data, ctx) : limits.open(data, ctx)',
        'data = limits.open(data, ctx)',
      ],
    ],
    tests: ['test/snapshot-file-slices.test.ts'],
  },
  {
    name: 'commit-notices-held',
    what: "a leader's held bare commit notices never go out at a tick (an idle follower waits for a heartbeat)",
    edits: [
      ['src/node.ts', '    this.core!.tick(n)\n    this.notices.flush()\n', '    this.core!.tick(n)\n'],
    ],
    tests: ['test/node.commit-notice.test.ts'],
  },
  {
    name: 'commit-notices-kept',
    what: 'a held bare commit notice is sent even after an append with entries carried its commit index',
    edits: [
      [
        'src/internal/commit-notices.ts',
        'this.#held.size > 0) this.#held.delete(m.to)',
        'this.#held.size < 0) this.#held.delete(m.to)',
      ],
    ],
    tests: ['test/commit-notices.test.ts'],
  },
  {
    name: 'inline-write-not-awaited',
    what: "an inline batch's write is started but not waited for (its saves resolve before they are durable)",
    edits: [
      [
        'src/file-storage.ts',
        'if (inline) writeAllSync(this.#fs, this.#fd, chunk, this.#segSize)',
        'if (inline) void writeAll(this.#fs, this.#fd, chunk, this.#segSize)',
      ],
    ],
    tests: ['test/file-storage-inline.test.ts', 'test/file-storage-power-loss.test.ts'],
  },
  {
    name: 'inline-mixed-batch',
    what: 'a batch holding a save that is not inline is written inline all the same',
    edits: [
      [
        'src/file-storage.ts',
        'if (p.run !== undefined || (p.buf !== null && p.inline !== true)) return false',
        'if (p.run !== undefined) return false',
      ],
    ],
    tests: ['test/file-storage-inline.test.ts'],
  },
  {
    name: 'appends-wait-for-write',
    what: "a leader's appends wait in the connections while the Ready's own work (log records, applies) runs",
    edits: [
      ['src/node.ts', "          await undefined\n          if (this.state !== 'running') return\n", ''],
    ],
    tests: ['test/node.append-order.test.ts'],
  },
  {
    name: 'apply-before-background-write',
    what: "a Ready's committed entries are applied before its write in the background has started",
    edits: [
      [
        'src/node.ts',
        "          if (!inline && rd.committed.length > 0) {\n            await Promise.resolve()\n            if (this.state !== 'running') return\n          }\n",
        '',
      ],
    ],
    tests: ['test/node.append-order.test.ts'],
  },
  {
    name: 'leader-writes-inline',
    what: 'every member writes its log inline however many proposals wait (a leader stops taking them meanwhile)',
    edits: [
      [
        'src/node.ts',
        'rd.snapshot === null && this.inlineWrites.inline(core.role, rd.entries.length)',
        "rd.snapshot === null && core.role !== 'candidate'",
      ],
    ],
    tests: ['test/node.inline-saves.test.ts'],
  },
  {
    name: 'leader-inline-while-busy',
    what: 'a leader writes inline again although a proposal came in during its last write',
    edits: [
      [
        'src/internal/inline-writes.ts',
        'const quiet = !this.#busy && entries <= 1',
        'const quiet = entries <= 1',
      ],
    ],
    tests: ['test/node.inline-saves.test.ts'],
  },
  {
    name: 'follower-inline-under-load',
    what: 'a follower writes inline however many entries it writes (it stops answering heartbeats meanwhile)',
    edits: [
      [
        'src/internal/inline-writes.ts',
        "if (role === 'follower') return entries <= 1",
        "if (role === 'follower') return true",
      ],
    ],
    tests: ['test/node.inline-saves.test.ts'],
  },
  {
    name: 'inline-on-slow-disk',
    what: 'saves are written inline however slow the last write was (a slow disk blocks the timers)',
    edits: [
      [
        'src/file-storage.ts',
        'this.#lastWriteMs <= this.#maxInlineWriteMs && isInline(batch)',
        'isInline(batch)',
      ],
    ],
    tests: ['test/file-storage-inline.test.ts'],
  },
  {
    name: 'snapshot-due-after-write',
    what: 'a snapshot that came due while another was written waits for the next applied entry',
    edits: [
      [
        'src/internal/applier.ts',
        "if (this.snapshotDue() && host.running()) this.queue.push({ kind: 'entries', entries: [] })",
        'if (false) this.queue.push({ kind: "entries", entries: [] })',
      ],
    ],
    tests: ['test/snapshot-after-slow-save.test.ts', 'test/snapshot.test.ts'],
  },
  {
    name: 'commit-quorum-order',
    what: "a leader's commit index is taken from the match indexes in ascending order (a minority with an even count)",
    edits: [
      [
        'src/core.ts',
        'for (; i > 0 && matches[i - 1]! < m; i--) matches[i] = matches[i - 1]!',
        'for (; i > 0 && matches[i - 1]! > m; i--) matches[i] = matches[i - 1]!',
      ],
    ],
    tests: [...CORE, 'test/membership.test.ts'],
  },
  {
    name: 'zero-fill-under-records',
    what: 'records are written where a fill of zeros still in flight will land (its zeros may overwrite them)',
    edits: [
      [
        'src/internal/wal/zero-tail.ts',
        'return (this.#filling !== null && to > this.#durable) || this.#failure !== null',
        'return this.#failure !== null',
      ],
    ],
    tests: [ZERO_TAIL_TEST, 'test/file-storage-power-loss.test.ts'],
  },
  {
    name: 'zeros-kept-on-roll',
    what: 'a segment keeps its zeros written ahead when the next one starts (it no longer ends in a record)',
    edits: [
      [
        'src/file-storage.ts',
        '      await flushChunk()\n      await this.#cutZeros()\n',
        '      await flushChunk()\n',
      ],
    ],
    tests: [ZERO_TAIL_TEST, 'test/file-storage-power-loss.test.ts'],
  },
  {
    name: 'zeros-kept-on-reseal',
    what: 'a reseal leaves the zeros on the old last segment (a crash before it is deleted leaves it in the middle)',
    edits: [
      [
        'src/file-storage.ts',
        '    await this.#compacting\n    await this.#cutZeros()\n',
        '    await this.#compacting\n',
      ],
    ],
    tests: [ZERO_TAIL_TEST, 'test/file-storage-reseal.test.ts'],
  },
  {
    name: 'cut-back-during-fill',
    what: 'a write that found the disk full is cut back while a fill of zeros is still in flight',
    edits: [
      [
        'src/file-storage.ts',
        '    await this.#zeros.settle()\n    const { fd, segment } = await cutBack(',
        '    const { fd, segment } = await cutBack(',
      ],
    ],
    tests: [ZERO_TAIL_TEST, NO_SPACE_TEST],
  },
  {
    name: 'fill-failure-ignored',
    what: 'a fill of zeros that fails with EIO is taken for a full disk and the log goes on',
    edits: [
      ['src/internal/wal/zero-tail.ts', 'if (isNoSpace(e)) this.#full = true', 'if (e) this.#full = true'],
    ],
    tests: [ZERO_TAIL_TEST],
  },
  {
    name: 'fill-full-disk-fatal',
    what: 'a fill of zeros that finds the disk full stops the log for good',
    edits: [
      ['src/internal/wal/zero-tail.ts', 'if (isNoSpace(e)) this.#full = true', 'if (!e) this.#full = true'],
    ],
    tests: [ZERO_TAIL_TEST],
  },
  {
    name: 'no-zero-fills',
    what: 'no zeros are written ahead: every save appends to the segment again',
    edits: [
      [
        'src/internal/wal/zero-tail.ts',
        'if (this.#window === 0 || this.#filling',
        'if (this.#window >= 0 || this.#filling',
      ],
    ],
    tests: [ZERO_TAIL_TEST],
  },
]

// ---------------------------------------------------------------- arguments

const args = process.argv.slice(2)
if (args.includes('--list')) {
  for (const m of mutants) console.log(`${m.name.padEnd(28)} ${m.what}`)
  process.exit(0)
}
const chosen = args.length === 0 ? mutants : mutants.filter((m) => args.some((a) => m.name.includes(a)))
if (chosen.length === 0) {
  console.error(`no mutant matches ${args.join(' ')} (see --list)`)
  process.exit(2)
}

// ---------------------------------------------------------------- scratch copy

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmkit-mutate-'))
let child = null
const cleanup = () => {
  if (child && child.exitCode === null) {
    try {
      process.kill(-child.pid, 'SIGKILL')
    } catch {}
  }
  fs.rmSync(scratch, { recursive: true, force: true })
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    cleanup()
    process.exit(130)
  })
}
process.on('exit', cleanup)

/** Copies the repository's sources; node_modules entries are linked, except the workspace links. */
function makeScratch() {
  const skip = new Set(['node_modules', '.git', 'dist', '.vite', 'coverage'])
  const copy = (from, to) => {
    fs.cpSync(from, to, {
      recursive: true,
      filter: (src) => !skip.has(path.basename(src)) || src === from,
    })
  }
  for (const f of ['package.json', 'vitest.config.ts', 'tsconfig.json', 'tsconfig.base.json']) {
    if (fs.existsSync(path.join(root, f))) fs.copyFileSync(path.join(root, f), path.join(scratch, f))
  }
  copy(path.join(root, 'packages'), path.join(scratch, 'packages'))
  // Test helpers shared by the packages (the raft tests' mulberry32).
  if (fs.existsSync(path.join(root, 'test'))) copy(path.join(root, 'test'), path.join(scratch, 'test'))
  // dist/ of every package: tests that spawn processes import it.
  for (const p of fs.readdirSync(path.join(root, 'packages'))) {
    const dist = path.join(root, 'packages', p, 'dist')
    if (fs.existsSync(dist)) fs.cpSync(dist, path.join(scratch, 'packages', p, 'dist'), { recursive: true })
  }
  const nm = path.join(scratch, 'node_modules')
  fs.mkdirSync(nm)
  for (const e of fs.readdirSync(path.join(root, 'node_modules'))) {
    if (e === '.vite' || e === '.vite-temp') continue
    const src = path.join(root, 'node_modules', e)
    // Workspace links are relative (../../packages/x): copied, they point into the scratch copy.
    if (e === '@swarmkit') fs.cpSync(src, path.join(nm, e), { recursive: true, verbatimSymlinks: true })
    else fs.symlinkSync(src, path.join(nm, e))
  }
}

function applyEdits(m) {
  const originals = new Map()
  for (const [file, find, replace] of m.edits) {
    const p = path.join(scratch, 'packages/raft', file)
    const text = fs.readFileSync(p, 'utf8')
    if (!originals.has(p)) originals.set(p, text)
    const at = text.indexOf(find)
    if (at < 0 || text.indexOf(find, at + 1) >= 0) {
      for (const [q, t] of originals) fs.writeFileSync(q, t)
      return { ok: false, why: `${file}: the text to mutate is ${at < 0 ? 'missing' : 'not unique'}` }
    }
    fs.writeFileSync(p, text.slice(0, at) + replace + text.slice(at + find.length))
  }
  const restore = () => {
    for (const [q, t] of originals) fs.writeFileSync(q, t)
  }
  return { ok: true, restore }
}

// ---------------------------------------------------------------- running tests

function runTests(files) {
  const out = path.join(scratch, 'vitest-result.json')
  fs.rmSync(out, { force: true })
  // raft-alone: the raft files vitest.config.ts runs by themselves (timing-sensitive).
  const argv = [
    'vitest',
    'run',
    '--project',
    'raft',
    '--project',
    'raft-alone',
    '--reporter=json',
    `--outputFile=${out}`,
  ]
  argv.push(...files.map((f) => `packages/raft/${f}`))
  return new Promise((resolve) => {
    const started = Date.now()
    child = spawn('npx', argv, {
      cwd: scratch,
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, SWARMKIT_SLOW: '', FORCE_COLOR: '0' },
    })
    let stderr = ''
    child.stderr.on('data', (d) => {
      stderr = (stderr + d).slice(-4000)
    })
    // A mutant that livelocks a test must not hang the run.
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {}
    }, 600_000)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      const seconds = ((Date.now() - started) / 1000).toFixed(0)
      let failed = []
      let total = 0
      let parsed = false
      try {
        const r = JSON.parse(fs.readFileSync(out, 'utf8'))
        parsed = true
        for (const f of r.testResults) {
          const file = path.basename(f.name)
          if (f.assertionResults.length === 0 && f.status === 'failed') failed.push(`${file}: ${f.message}`)
          for (const a of f.assertionResults) {
            total++
            if (a.status === 'failed') failed.push(`${file} > ${a.title}`)
          }
        }
      } catch {}
      if (!parsed)
        failed = [signal ? `killed (${signal}): timed out` : `vitest exited ${code}: ${stderr.trim()}`]
      resolve({ failed, total, seconds, code })
    })
  })
}

// ---------------------------------------------------------------- main

makeScratch()
const allFiles = [...new Set(chosen.flatMap((m) => m.tests))]
console.log(`scratch copy: ${scratch}`)
console.log(`baseline: ${allFiles.length} test files, unmutated ...`)
const base = await runTests(allFiles)
if (base.failed.length > 0) {
  console.error(`the unmutated tests fail; fix them first:\n  ${base.failed.join('\n  ')}`)
  process.exit(1)
}
console.log(`baseline: ${base.total} tests pass (${base.seconds}s)\n`)

const rows = []
for (const m of chosen) {
  const applied = applyEdits(m)
  if (!applied.ok) {
    rows.push({ m, status: 'NOT APPLIED', caught: [applied.why], seconds: 0 })
    console.log(`${m.name}: NOT APPLIED (${applied.why})`)
    continue
  }
  const r = await runTests(m.tests)
  applied.restore()
  const status = r.failed.length > 0 ? 'caught' : 'SURVIVED'
  rows.push({ m, status, caught: r.failed, seconds: r.seconds })
  console.log(`${m.name}: ${status} (${r.failed.length} failing, ${r.seconds}s)`)
}

const short = (s) => (s.length > 110 ? `${s.slice(0, 107)}...` : s)
console.log('\n| mutant | bug | result | caught by |')
console.log('|---|---|---|---|')
for (const { m, status, caught } of rows) {
  const by =
    caught.slice(0, 3).map(short).join('<br>') + (caught.length > 3 ? `<br>(+${caught.length - 3} more)` : '')
  console.log(`| ${m.name} | ${m.what} | ${status} | ${by || '-'} |`)
}
const bad = rows.filter((r) => r.status !== 'caught')
console.log(`\n${rows.length - bad.length} of ${rows.length} mutants caught`)
process.exitCode = bad.length > 0 ? 1 : 0
