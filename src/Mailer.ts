/**
 * The port that sends one e-mail, and its memory layer (`layerMemory`: keeps every message, for tests and the
 * demo). SMTP lives beside it, in `tenant-infra/Mailer/Smtp` (nodemailer, pooled), loaded only when imported.
 *
 * Every message has a `key` naming what it is (an event and a recipient, say). The `Message-ID` is derived from
 * it, so a message sent twice carries the same id and the repeat is recognisable downstream.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { checkHeaders, messageIdFor } from "./internal/messageRules.js"
import type { SendError } from "./SendError.js"

/**
 * One e-mail. `from` defaults to the layer's sender (`MAIL_FROM`). Header values (`subject`, `to`, `from`,
 * `headers` and their names) must not hold line breaks or other control characters (Unicode Cc, C1 controls
 * such as U+0085 included), format characters (Cf: zero-width characters, bidirectional controls such as U+202E),
 * line or paragraph separators (U+2028, U+2029) or halves of surrogate pairs, and the addresses in `to` and
 * `from` no RFC 2047 encoded word (`=?utf-8?q?...?=@acme.test`): such a message fails as `Permanent`, on every
 * layer, before any server sees it.
 *
 * @since 0.1.0
 * @category models
 */
export interface EmailMessage {
  /** What this message is, e.g. `<event id>:email:<recipient>`; the same key gives the same Message-ID. */
  readonly key: string
  readonly to: string
  readonly subject: string
  readonly text: string
  readonly html: string
  readonly from?: string | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/**
 * What the provider answered: the message's `Message-ID` and the server's reply.
 *
 * @since 0.1.0
 * @category models
 */
export interface SentEmail {
  readonly messageId: string
  readonly response: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The address messages are sent from unless they say otherwise. */
  readonly from: string
  /** Sends one message, one attempt; retries are the caller's (see `SendRetry`). */
  readonly send: (message: EmailMessage) => Effect.Effect<SentEmail, SendError>
  /**
   * Proves that the server answers, sending nothing: `Mailer/Smtp` opens a connection, waits for the greeting
   * (and the EHLO reply, and STARTTLS where it would use it), then QUITs, without logging in. For health checks
   * (see `InfraHealth`); a mailer that reaches no server has none.
   */
  readonly ping?: Effect.Effect<void, SendError> | undefined
}

/**
 * @since 0.1.0
 * @category services
 */
export class Mailer extends Context.Tag("tenant-infra/Mailer")<Mailer, Service>() {}

export {
  /**
   * Refuses a message whose header values hold line breaks or control, format or bidirectional characters, or
   * whose recipient or sender address holds an encoded word.
   *
   * @since 0.1.0
   * @category guards
   */
  checkHeaders,
  /**
   * The `Message-ID` a message with this key gets when sent from `from`: `<digest@from-domain>`.
   *
   * @since 0.1.0
   * @category constructors
   */
  messageIdFor
} from "./internal/messageRules.js"

/**
 * A message as the memory mailer kept it, with the sender and Message-ID it was given.
 *
 * @since 0.1.0
 * @category models
 */
export interface KeptEmail extends EmailMessage {
  readonly from: string
  readonly messageId: string
}

/**
 * What `layerMemory` sent, in order.
 *
 * @since 0.1.0
 * @category services
 */
export class MemoryMailer extends Context.Tag("tenant-infra/MemoryMailer")<MemoryMailer, {
  readonly sent: Effect.Effect<ReadonlyArray<KeptEmail>>
}>() {}

/**
 * A mailer that keeps every message instead of sending it, applying the same header checks as `Mailer/Smtp`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: { readonly from?: string } = {}): Layer.Layer<Mailer | MemoryMailer> =>
  Layer.effectContext(Effect.gen(function*() {
    const from = options.from ?? "tenant-infra@localhost"
    // Appended in place, copied when read: a copy per send made a run of n messages cost n squared.
    const kept: Array<KeptEmail> = []
    const mailer: Service = {
      from,
      send: (message) =>
        Effect.gen(function*() {
          const sender = message.from ?? from
          yield* checkHeaders(message, sender)
          const messageId = messageIdFor(message.key, sender)
          kept.push({ ...message, from: sender, messageId })
          return { messageId, response: "250 kept in memory" }
        })
    }
    return Context.make(Mailer, mailer).pipe(Context.add(MemoryMailer, { sent: Effect.sync(() => kept.slice()) }))
  }))
