import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import type * as Scope from "effect/Scope"

/**
 * Runs `effect` unless a run under the same key is under way, in which case the caller waits for that run's
 * result instead of starting another.
 */
export type SingleFlight<A, E> = (key: string, effect: Effect.Effect<A, E>) => Effect.Effect<A, E>

/**
 * One run per key at a time, forked into `scope`: a caller interrupted while it waits does not interrupt the run
 * for the others, and closing the scope interrupts the runs still going. The entry is added and the run forked
 * in one synchronous step, so no second caller can slip in between; it is removed when the run ends, however it
 * ends, so the next caller after that starts a new run.
 */
export const makeSingleFlight = <A, E>(scope: Scope.Scope): SingleFlight<A, E> => {
  const flights = new Map<string, Deferred.Deferred<A, E>>()
  return (key, effect) =>
    Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        const current = flights.get(key)
        if (current !== undefined) return restore(Deferred.await(current))
        const deferred = Deferred.unsafeMake<A, E>(FiberId.none)
        flights.set(key, deferred)
        // Interruptible again inside the fork, so that closing the scope can stop it.
        return Effect.forkIn(Effect.interruptible(effect), scope).pipe(
          Effect.tap((fiber) =>
            Effect.sync(() =>
              // An observer runs however the fiber ends, even when it is interrupted before it starts.
              fiber.addObserver((exit) => {
                if (flights.get(key) === deferred) flights.delete(key)
                Deferred.unsafeDone(deferred, exit)
              })
            )
          ),
          Effect.zipRight(restore(Deferred.await(deferred)))
        )
      })
    )
}
