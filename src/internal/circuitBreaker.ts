import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the breaker. */
  readonly threshold: number
  /** How long it stays open before one call is let through. */
  readonly cooldown: Duration.DurationInput
  /** Set to 1 while the breaker is open (or half-open), 0 while it is closed. */
  readonly gauge: Metric.Metric.Gauge<number>
}

export interface CircuitBreaker {
  /**
   * Runs `effect` when the breaker lets it through, `None` without running it when the breaker is open. Closed, it
   * lets every call through; after `threshold` failures in a row it opens for `cooldown` (by the `Clock`), then
   * lets one call through (half-open): its success closes the breaker, its failure opens it for another cooldown.
   */
  readonly run: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<Option.Option<A>, E>
  /**
   * Whether the breaker is closed with no failure counted: a caller that must spare `run`'s steps may then make
   * its call directly, and report how it ended through `clearSucceeded` or `clearFailed`, as `run` does.
   */
  readonly isClear: () => boolean
  /** Reports a success of a call made while {@link isClear}. */
  readonly clearSucceeded: () => void
  /** Reports a failure of a call made while {@link isClear}. */
  readonly clearFailed: (error: unknown) => Effect.Effect<void>
}

type Role = "closed" | "probe" | "skip"

export const makeCircuitBreaker = (options: CircuitBreakerOptions): Effect.Effect<CircuitBreaker> =>
  Effect.gen(function*() {
    const threshold = Math.max(1, Math.floor(options.threshold))
    const cooldown = Duration.toMillis(options.cooldown)
    let failures = 0
    // Undefined while closed; open until then, and half-open once it has passed.
    let openUntil: number | undefined
    let probing = false

    yield* Metric.set(options.gauge, 0)

    const roleAt = (now: number): Role => {
      if (openUntil === undefined) return "closed"
      if (probing || now < openUntil) return "skip"
      probing = true
      return "probe"
    }

    const settle = <A, E>(role: Role, exit: Exit.Exit<A, E>) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const wasOpen = openUntil !== undefined
        if (role === "probe") probing = false
        if (Exit.isSuccess(exit)) {
          // A call that started before the breaker opened says nothing about the store now; only a probe closes it.
          if (role === "probe" || !wasOpen) {
            failures = 0
            openUntil = undefined
          }
        } else if (Option.isSome(Cause.failureOption(exit.cause))) {
          if (role === "probe") {
            openUntil = now + cooldown
          } else if (!wasOpen && ++failures >= threshold) {
            openUntil = now + cooldown
          }
        }
        // An interrupted or dying probe leaves the breaker half-open, so that the next call probes again.
        const isOpen = openUntil !== undefined
        return isOpen === wasOpen ? Effect.void : Metric.set(options.gauge, isOpen ? 1 : 0)
      })

    // Closed with no failure counted, the common case, needs neither the clock nor a mask: only a failure has
    // something to record.
    const isClear = () => openUntil === undefined && failures === 0
    const clearFailed = (error: unknown) => openUntil === undefined ? settle("closed", Exit.fail(error)) : Effect.void
    const clearSucceeded = () => {
      // Another call may have failed meanwhile: a success while closed clears the count, as `settle` does.
      if (failures !== 0 && openUntil === undefined) failures = 0
    }

    const run = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<Option.Option<A>, E> =>
      Effect.suspend(() =>
        isClear()
          ? effect.pipe(
            Effect.tapError(clearFailed),
            Effect.map((value) => {
              clearSucceeded()
              return Option.some(value)
            })
          )
          : guardedRun(effect)
      )

    const guardedRun = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<Option.Option<A>, E> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const role = roleAt(now)
          if (role === "skip") return Effect.succeed(Option.none())
          return restore(effect).pipe(
            Effect.onExit((exit) => settle(role, exit)),
            Effect.map(Option.some)
          )
        })
      )

    return { run, isClear, clearSucceeded, clearFailed }
  })
