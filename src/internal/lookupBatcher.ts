/**
 * Lookups by one key, gathered into one query: a data loader whose window is one turn of the runtime's scheduler.
 *
 * A lookup opens a gathering and yields once, so that the lookups started in the same turn (the fibers of one
 * `Effect.forEach`, a burst of cache misses) join it; then the gathering goes out as one query for all its keys,
 * at most `maxBatch` keys a query. A lookup that gathered no other is sent as it would be without the batcher,
 * alone and by the caller's fiber: one fiber looking tenants up one after another pays one yield per lookup
 * (about 2-3 us of CPU on the 2-core machine, against 150-250 us of CPU for the lookup). Sixteen fibers looking
 * up sixteen tenants at once make one query, not sixteen.
 *
 * A gathered query runs in a fiber of the batcher's scope, not of any caller: a caller that is interrupted
 * stops waiting, and the others still get their answers (an opener interrupted while it yields sends the others'
 * keys before it goes). A query that fails fails every lookup it carried, with its error; each lookup decides
 * alone what its row means (a row that does not decode fails that lookup only, in the caller's own step after
 * this one).
 */
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"

export interface LookupBatcherOptions<A, E> {
  /** The query for one key, sent as is when a lookup gathered no other. */
  readonly one: (key: string) => Effect.Effect<Option.Option<A>, E>
  /** The query for several keys: what it found, by key (a key missing from the map found nothing). */
  readonly many: (keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyMap<string, A>, E>
  /** The most keys one query asks for. */
  readonly maxBatch: number
  /** Where gathered queries run. */
  readonly scope: Scope.Scope
}

/**
 * The answer for one key of a gathering, and the lookups waiting for it. (Not a `Deferred`: making one costs
 * several microseconds, more than the rest of a lookup's way through the batcher.)
 */
interface Waiter<A, E> {
  answer: Effect.Effect<Option.Option<A>, E> | undefined
  readonly resumes: Array<(answer: Effect.Effect<Option.Option<A>, E>) => void>
}

const makeWaiter = <A, E>(): Waiter<A, E> => ({ answer: undefined, resumes: [] })

const answered = <A, E>(waiter: Waiter<A, E>, answer: Effect.Effect<Option.Option<A>, E>): void => {
  waiter.answer = answer
  for (const resume of waiter.resumes) resume(answer)
  waiter.resumes.length = 0
}

const awaitAnswer = <A, E>(waiter: Waiter<A, E>): Effect.Effect<Option.Option<A>, E> =>
  Effect.suspend(() =>
    waiter.answer ?? Effect.async<Option.Option<A>, E>((resume) => {
      waiter.resumes.push(resume)
      // An interrupted lookup stops waiting; the answer still goes to the others.
      return Effect.sync(() => {
        const index = waiter.resumes.indexOf(resume)
        if (index >= 0) waiter.resumes.splice(index, 1)
      })
    })
  )

/** The lookups of one gathering, by key: those that ask for the same key share its answer. */
interface Gathering<A, E> {
  readonly openerKey: string
  readonly waiting: Map<string, Waiter<A, E>>
  /** Whether a lookup joined the opener's own key, so that its answer must be shared. */
  openerJoined: boolean
}

export const makeLookupBatcher = <A, E>(
  options: LookupBatcherOptions<A, E>
): (key: string) => Effect.Effect<Option.Option<A>, E> => {
  const { many, maxBatch, one, scope } = options
  let open: Gathering<A, E> | undefined

  const answer =
    (batch: ReadonlyArray<readonly [string, Waiter<A, E>]>) => (exit: Exit.Exit<ReadonlyMap<string, A>, E>) =>
      Effect.sync(() => {
        for (const [key, waiter] of batch) {
          answered(
            waiter,
            exit._tag === "Success"
              ? Effect.succeed(Option.fromNullable(exit.value.get(key)))
              : Effect.failCause(exit.cause)
          )
        }
      })

  // onExit rather than exit: an interruption (the scope closing) ends the waiting lookups too.
  const send = (batch: ReadonlyArray<readonly [string, Waiter<A, E>]>) =>
    Effect.onExit(many(batch.map(([key]) => key)), answer(batch)).pipe(Effect.exit, Effect.asVoid)

  /** Every lookup of a closed gathering, in queries of at most `maxBatch` keys, all at once. */
  const sendAll = (gathering: Gathering<A, E>): Effect.Effect<void> => {
    const entries = [...gathering.waiting]
    const batches: Array<typeof entries> = []
    for (let start = 0; start < entries.length; start += maxBatch) batches.push(entries.slice(start, start + maxBatch))
    return Effect.forEach(batches, send, { concurrency: "unbounded", discard: true })
  }

  const close = (gathering: Gathering<A, E>) => {
    if (open === gathering) open = undefined
  }

  return (key) =>
    Effect.suspend(() => {
      if (open !== undefined) {
        const gathering = open
        let waiter = gathering.waiting.get(key)
        if (waiter === undefined) {
          waiter = makeWaiter()
          gathering.waiting.set(key, waiter)
        } else if (key === gathering.openerKey) {
          gathering.openerJoined = true
        }
        return awaitAnswer(waiter)
      }
      const own = makeWaiter<A, E>()
      const gathering: Gathering<A, E> = {
        openerKey: key,
        waiting: new Map([[key, own]]),
        openerJoined: false
      }
      open = gathering
      return Effect.yieldNow().pipe(
        Effect.onInterrupt(() =>
          Effect.suspend(() => {
            close(gathering)
            if (!gathering.openerJoined) gathering.waiting.delete(key)
            return gathering.waiting.size === 0 ? Effect.void : Effect.asVoid(Effect.forkIn(sendAll(gathering), scope))
          })
        ),
        Effect.zipRight(Effect.suspend(() => {
          close(gathering)
          // None joined: sent alone, as without the batcher, in the caller's fiber.
          if (gathering.waiting.size === 1 && !gathering.openerJoined) return one(key)
          return Effect.zipRight(Effect.forkIn(sendAll(gathering), scope), awaitAnswer(own))
        }))
      )
    })
}

/** How a query on callbacks answers: a failure, or what it found. */
export type Answer<A, E> = (failure: E | undefined, found: A | undefined) => void

export interface CallbackLookupBatcherOptions<A, E> {
  /** The query for one key, sent as is when a lookup gathered no other. */
  readonly one: (key: string, answer: Answer<A, E>) => void
  /** The query for several keys: what it found, by key (a key missing from the map found nothing). */
  readonly many: (keys: ReadonlyArray<string>, answer: Answer<ReadonlyMap<string, A>, E>) => void
  /** The most keys one query asks for. */
  readonly maxBatch: number
}

/**
 * The same gathering for queries made of callbacks (a `pg` pool's), with no fiber, `Effect` or scope of its own:
 * `makeLookupBatcher` costs a lookup alone a dozen runtime steps, which on a busy process came to 20-40 us of a
 * lookup's 250. A lookup registers its answer and gets back a function that takes it back (for an interrupted
 * caller); the first lookup of a gathering queues its sending as a microtask, so that every lookup started before
 * that microtask runs (the fibers of one `Effect.forEach`, each resumed in a microtask of its own) joins it.
 */
export const makeCallbackLookupBatcher = <A, E>(
  options: CallbackLookupBatcherOptions<A, E>
): (key: string, answer: Answer<A, E>) => () => void => {
  const { many, maxBatch, one } = options
  let open: Map<string, Array<Answer<A, E>>> | undefined

  const sendOne = (key: string, answers: Array<Answer<A, E>>) =>
    one(key, (failure, found) => {
      for (const answer of answers.splice(0)) answer(failure, found)
    })

  const sendMany = (batch: ReadonlyArray<readonly [string, Array<Answer<A, E>>]>) =>
    many(batch.map(([key]) => key), (failure, found) => {
      for (const [key, answers] of batch) {
        const row = found?.get(key)
        for (const answer of answers.splice(0)) answer(failure, row)
      }
    })

  const send = (gathering: Map<string, Array<Answer<A, E>>>) => {
    if (open === gathering) open = undefined
    // Keys whose every caller was interrupted are not asked for.
    const entries = [...gathering].filter(([, answers]) => answers.length > 0)
    const [only] = entries
    if (entries.length === 1 && only !== undefined) return sendOne(only[0], only[1])
    for (let start = 0; start < entries.length; start += maxBatch) sendMany(entries.slice(start, start + maxBatch))
  }

  return (key, answer) => {
    let gathering = open
    if (gathering === undefined) {
      const opened = new Map<string, Array<Answer<A, E>>>()
      gathering = open = opened
      queueMicrotask(() => send(opened))
    }
    let answers = gathering.get(key)
    if (answers === undefined) gathering.set(key, answers = [])
    answers.push(answer)
    const waiting = answers
    return () => {
      const index = waiting.indexOf(answer)
      if (index >= 0) waiting.splice(index, 1)
    }
  }
}
