import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"
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
