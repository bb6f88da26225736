/**
 * Lookups by one key, gathered into one query while others are under way: a data loader without a time window.
 *
 * A lookup made while no query of its batcher is running is sent at once, alone, as it would be without the
 * batcher: one fiber looking tenants up one after another pays nothing for it. A lookup made while one is
 * running waits for the current turn of the runtime's scheduler to end (so that the lookups started together
 * gather), then goes with every other lookup gathered so far in one query for all their keys, at most
 * `maxBatch` keys a query. Sixteen fibers looking up sixteen tenants at once thus make two queries, not
 * sixteen: the first alone, the other fifteen together.
 *
 * A gathered query runs in a fiber of the batcher's scope, not of any caller: a caller that is interrupted
 * stops waiting, and the others still get their answers. A query that fails fails every lookup it carried,
 * with its error; each lookup decides alone what its row means (a row that does not decode fails that lookup
 * only, in the caller's own step after this one).
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"

export interface LookupBatcherOptions<A, E> {
  /** The query for one key, sent as is when nothing else is running. */
  readonly one: (key: string) => Effect.Effect<Option.Option<A>, E>
  /** The query for several keys: what it found, by key (a key missing from the map found nothing). */
  readonly many: (keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyMap<string, A>, E>
  /** The most keys one query asks for. */
  readonly maxBatch: number
  /** Where gathered queries run. */
  readonly scope: Scope.Scope
}

type Waiting<A, E> = Map<string, Deferred.Deferred<Option.Option<A>, E>>

export const makeLookupBatcher = <A, E>(
  options: LookupBatcherOptions<A, E>
): (key: string) => Effect.Effect<Option.Option<A>, E> => {
  const { many, maxBatch, one, scope } = options
  let running = 0
  let waiting: Waiting<A, E> | undefined

  const finished = Effect.sync(() => {
    running--
  })

  const answer = (batch: Waiting<A, E>, exit: Exit.Exit<ReadonlyMap<string, A>, E>) =>
    Effect.sync(() => {
      for (const [key, deferred] of batch) {
        Deferred.unsafeDone(
          deferred,
          exit._tag === "Success"
            ? Effect.succeed(Option.fromNullable(exit.value.get(key)))
            : Effect.failCause(exit.cause)
        )
      }
    })

  const send = (batch: Waiting<A, E>): Effect.Effect<void> =>
    Effect.suspend(() => {
      running++
      // onExit rather than exit: an interruption (the scope closing) ends the waiting lookups too.
      return Effect.onExit(many([...batch.keys()]), (exit) => answer(batch, exit)).pipe(
        Effect.exit,
        Effect.asVoid,
        Effect.ensuring(finished)
      )
    })

  // Everything gathered since the previous flush, in queries of at most maxBatch keys, all at once.
  const flush = Effect.suspend(() => {
    const gathered = waiting
    waiting = undefined
    if (gathered === undefined) return Effect.void
    const batches: Array<Waiting<A, E>> = []
    let batch: Waiting<A, E> = new Map()
    for (const entry of gathered) {
      if (batch.size === maxBatch) {
        batches.push(batch)
        batch = new Map()
      }
      batch.set(entry[0], entry[1])
    }
    batches.push(batch)
    return Effect.forEach(batches, send, { concurrency: "unbounded", discard: true })
  })
  const flushLater = Effect.zipRight(Effect.yieldNow(), flush).pipe(
    Effect.onInterrupt(() =>
      Effect.sync(() => {
        const gathered = waiting
        waiting = undefined
        gathered?.forEach((deferred) => Deferred.unsafeDone(deferred, Effect.interrupt))
      })
    )
  )

  return (key) =>
    Effect.suspend(() => {
      if (running === 0 && waiting === undefined) {
        running++
        return Effect.ensuring(one(key), finished)
      }
      let deferred: Deferred.Deferred<Option.Option<A>, E> | undefined
      if (waiting === undefined) {
        waiting = new Map()
        // The first to wait schedules the flush; the rest of this turn's lookups join it.
        deferred = Deferred.unsafeMake(FiberId.none)
        waiting.set(key, deferred)
        return Effect.zipRight(Effect.forkIn(flushLater, scope), Deferred.await(deferred))
      }
      deferred = waiting.get(key)
      if (deferred === undefined) {
        deferred = Deferred.unsafeMake(FiberId.none)
        waiting.set(key, deferred)
      }
      return Deferred.await(deferred)
    })
}
