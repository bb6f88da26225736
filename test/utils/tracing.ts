import * as Effect from "effect/Effect"
import * as Tracer from "effect/Tracer"

/** A tracer that records the name and attributes of every span it is asked for, over the built-in one's spans. */
export const recordingTracer = Effect.map(Effect.tracer, (builtIn) => {
  const spans: Array<{ readonly name: string; readonly attributes: Map<string, unknown> }> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind, options) => {
      const span = builtIn.span(name, parent, context, links, startTime, kind, options)
      spans.push({ name, attributes: span.attributes as Map<string, unknown> })
      return span
    },
    context: (f) => f()
  })
  return { tracer, spans }
})
