/**
 * The port that sends one SMS, and its memory layer (`layerMemory`: keeps every message). An HTTP gateway (a
 * JSON POST through `@effect/platform`'s `HttpClient`) lives beside it, in `tenant-infra/SmsGateway/Http`.
 *
 * Every message has a `key` naming what it is; the gateway gets a digest of it as the `Idempotency-Key`, so a
 * resend after an ambiguous failure is recognised and not delivered twice.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { checkNumber, idempotencyKeyFor } from "./internal/messageRules.js"
import type { SendError } from "./SendError.js"

/**
 * One SMS to an E.164 number.
 *
 * @since 0.1.0
 * @category models
 */
export interface SmsMessage {
  /** What this message is, e.g. `<event id>:sms:<number>`; the same key gives the same idempotency key. */
  readonly key: string
  readonly to: string
  readonly text: string
}

/**
 * What the gateway answered: its id for the message.
 *
 * @since 0.1.0
 * @category models
 */
export interface SentSms {
  readonly id: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Sends one SMS, one attempt; retries are the caller's (see `SendRetry`). */
  readonly send: (message: SmsMessage) => Effect.Effect<SentSms, SendError>
  /**
   * Proves that the gateway answers, sending nothing: `layerHttp` sends `HEAD <url>` without the API key, and
   * any HTTP answer, whatever its status, is one. For health checks (see `InfraHealth`); a gateway that reaches
   * no server has none.
   */
  readonly ping?: Effect.Effect<void, SendError> | undefined
}

/**
 * @since 0.1.0
 * @category services
 */
export class SmsGateway extends Context.Tag("tenant-infra/SmsGateway")<SmsGateway, Service>() {}

export {
  /**
   * Refuses a number that is not E.164 before any gateway sees it: no retry can make it valid.
   *
   * @since 0.1.0
   * @category guards
   */
  checkNumber,
  /**
   * The `Idempotency-Key` a message with this key is sent with.
   *
   * @since 0.1.0
   * @category constructors
   */
  idempotencyKeyFor
} from "./internal/messageRules.js"

/**
 * A message as the memory gateway kept it.
 *
 * @since 0.1.0
 * @category models
 */
export interface KeptSms extends SmsMessage {
  readonly id: string
  readonly idempotencyKey: string
}

/**
 * What `layerMemory` sent, in order.
 *
 * @since 0.1.0
 * @category services
 */
export class MemorySmsGateway extends Context.Tag("tenant-infra/MemorySmsGateway")<MemorySmsGateway, {
  readonly sent: Effect.Effect<ReadonlyArray<KeptSms>>
}>() {}

/**
 * A gateway that keeps every message instead of sending it. Like a real gateway it deduplicates: a message
 * whose idempotency key it has seen gets the first message's id and is not kept twice.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<SmsGateway | MemorySmsGateway> = Layer.effectContext(Effect.gen(function*() {
  // Appended in place, copied when read: a copy per send made a run of n messages cost n squared.
  const kept: Array<KeptSms> = []
  const idsByKey = new Map<string, string>()
  const gateway: Service = {
    send: (message) =>
      Effect.zipRight(
        checkNumber(message),
        Effect.sync(() => {
          const idempotencyKey = idempotencyKeyFor(message.key)
          const seen = idsByKey.get(idempotencyKey)
          if (seen !== undefined) return { id: seen }
          const id = `memory-${kept.length + 1}`
          kept.push({ ...message, id, idempotencyKey })
          idsByKey.set(idempotencyKey, id)
          return { id }
        })
      )
  }
  return Context.make(SmsGateway, gateway).pipe(
    Context.add(MemorySmsGateway, { sent: Effect.sync(() => kept.slice()) })
  )
}))
