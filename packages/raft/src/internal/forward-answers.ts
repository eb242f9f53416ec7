// How this member answered forwarded proposals as leader, by sender and context. A network may deliver a
// forward twice, the copies at different times: each copy gets the answer the first one got. Otherwise a copy
// appended after the first was refused (a transfer had ended meanwhile) makes the refusal the follower took for
// "not committed" false, and a copy appended after the first was appended applies the command twice. Contexts
// are unique per sender (RaftNode starts them past those of its earlier runs); the oldest answers are forgotten
// beyond a bound.
export interface ForwardAnswer {
  /** Where it was appended (with `term`), or -1: refused. */
  readonly index: number
  readonly term: number
}

export class ForwardAnswers {
  private readonly byKey = new Map<string, ForwardAnswer>()

  constructor(private readonly max = 8192) {}

  /** How the forward `context` from `from` was answered, if it was. */
  get(from: string, context: number): ForwardAnswer | undefined {
    return context === 0 ? undefined : this.byKey.get(`${from}\u0000${context}`)
  }

  add(from: string, context: number, answer: ForwardAnswer): void {
    if (context === 0) return
    this.byKey.set(`${from}\u0000${context}`, answer)
    if (this.byKey.size > this.max) this.byKey.delete(this.byKey.keys().next().value!)
  }
}
