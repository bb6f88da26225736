import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"
import type * as MetricKeyType from "effect/MetricKeyType"
import * as MetricLabel from "effect/MetricLabel"
import type * as MetricState from "effect/MetricState"
import * as Tracer from "effect/Tracer"

/** Effect's built-in tracer: what every fiber has unless a layer (OpenTelemetry, say) installs another. */
const builtInTracer: Tracer.Tracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/** Whether spans made under `tracer` go anywhere: whether it is not Effect's built-in tracer. */
export const isTraced = (tracer: Tracer.Tracer): boolean => tracer !== builtInTracer

/**
 * `effect` in a span when a tracer that exports spans is installed, and as it is under Effect's built-in tracer,
 * which keeps spans in memory only. On paths that take a few microseconds (a cache hit), the span would cost
 * more than the work; no one can see it without a tracer installed.
 */
export const spanWhenTraced = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  name: string,
  options: Tracer.SpanOptions
): Effect.Effect<A, E, R> =>
  Effect.tracerWith((tracer) => tracer === builtInTracer ? effect : Effect.withSpan(effect, name, options))

/** An attribute on the current span, when spans are being made (see {@link spanWhenTraced}). */
export const annotateWhenTraced = (key: string, value: unknown): Effect.Effect<void> =>
  Effect.tracerWith((tracer) => tracer === builtInTracer ? Effect.void : Effect.annotateCurrentSpan(key, value))

const TIME_UNIT = MetricLabel.make("time_unit", "milliseconds")

type HistogramKey = MetricKey.MetricKey.Histogram

/** The key under which `Metric.timer(name, description)` records (its boundaries), before its `time_unit` tag. */
export const timerKey = (name: string, description: string): HistogramKey =>
  MetricKey.histogram(name, MetricBoundaries.exponential({ start: 0.5, factor: 2, count: 35 }), description)

/**
 * `Metric.timer` over `key`: durations in milliseconds, tagged `time_unit`. Metrics built on one key object are
 * one metric (a key's boundaries are compared by identity), so every view of a timer starts from its key.
 */
export const timerOf = (
  key: HistogramKey
): Metric.Metric<MetricKeyType.MetricKeyType.Histogram, Duration.Duration, MetricState.MetricState.Histogram> =>
  Metric.mapInput(Metric.tagged(Metric.fromMetricKey(key), TIME_UNIT.key, TIME_UNIT.value), Duration.toMillis)

/**
 * {@link timerOf} `key` with `tags` in its key, after `time_unit`, in the order in which `Metric.tagged` on the
 * timer would add them: the same metric, found once instead of on every update.
 */
export const timerWithTags = (
  key: HistogramKey,
  tags: Readonly<Record<string, string>>
): Metric.Metric<MetricKeyType.MetricKeyType.Histogram, Duration.Duration, MetricState.MetricState.Histogram> => {
  const labels = [TIME_UNIT, ...Object.entries(tags).map(([name, value]) => MetricLabel.make(name, value))]
  return Metric.mapInput(Metric.fromMetricKey(MetricKey.taggedWithLabels(key, labels)), Duration.toMillis)
}

/**
 * A counter with its tags in its key. `Metric.tagged` adds the tags on every update, which looks the metric up
 * in the registry each time; this one finds it once.
 */
export const withTags = (
  key: MetricKey.MetricKey.Counter<number>,
  tags: Readonly<Record<string, string>>
): Metric.Metric.Counter<number> =>
  Metric.fromMetricKey(
    MetricKey.taggedWithLabels(key, Object.entries(tags).map(([name, value]) => MetricLabel.make(name, value)))
  )
