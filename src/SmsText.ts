/**
 * SMS length accounting per GSM 03.38 (3GPP TS 23.038): which encoding a text needs, how long it is in that
 * encoding, how many segments it takes, and how to shorten it cleanly so that it fits a segment budget.
 *
 * - A text written entirely in the GSM-7 basic set and its extension table is sent as GSM-7: 160 septets in a
 *   single segment, 153 per segment when concatenated (the user data header takes the rest). Extension table
 *   characters (`^ { } \ [ ] ~ | €` and form feed) are sent as ESC plus a character and cost 2 septets.
 * - One character outside both tables switches the whole text to UCS-2: 70 UTF-16 code units in a single
 *   segment, 67 per segment when concatenated. Characters beyond the Basic Multilingual Plane (most emoji)
 *   take 2 units, a surrogate pair.
 * - Phones reassemble concatenated segments, but an escape pair or a surrogate pair split across two segments
 *   arrives as garbage, so segments are counted the way a gateway packs them: whole characters only.
 *
 * Every function here is pure; none of them changes a character to save space (see `NotificationTemplates`
 * for the one transliteration the SMS templates do).
 *
 * @since 0.1.0
 */

/**
 * How an SMS is encoded on the air.
 *
 * @since 0.1.0
 * @category models
 */
export type Encoding = "GSM-7" | "UCS-2"

/**
 * What one segment holds when the text is sent as a single message: 160 septets (GSM-7) or 70 UTF-16 code
 * units (UCS-2).
 *
 * @since 0.1.0
 * @category models
 */
export const SINGLE_SEGMENT_LIMIT: { readonly [E in Encoding]: number } = { "GSM-7": 160, "UCS-2": 70 }

/**
 * What each segment holds when the text is concatenated: 153 septets (GSM-7) or 67 UTF-16 code units (UCS-2),
 * because the user data header takes 6 octets of every segment.
 *
 * @since 0.1.0
 * @category models
 */
export const CONCATENATED_SEGMENT_LIMIT: { readonly [E in Encoding]: number } = { "GSM-7": 153, "UCS-2": 67 }

/**
 * An SMS text's encoding, length in that encoding and segment count.
 *
 * @since 0.1.0
 * @category models
 */
export interface Measurement {
  readonly encoding: Encoding
  readonly length: number
  readonly segments: number
}

// The GSM 03.38 default alphabet, 0x00-0x7F, without 0x1B (ESC, which only introduces the extension table).
// 0x09 is the capital C with cedilla, as in Unicode's GSM0338 mapping; the small one is not in the table.
const GSM7_BASIC = new Set(
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)

// The extension table: each of these is sent as ESC followed by a code, two septets.
const GSM7_EXTENSION = new Set("\f^{}\\[]~|€")

const isGsm7 = (char: string): boolean => GSM7_BASIC.has(char) || GSM7_EXTENSION.has(char)

/** What one code point costs in an encoding: septets for GSM-7, UTF-16 code units for UCS-2. */
const costOf = (char: string, encoding: Encoding): number =>
  encoding === "UCS-2" ? char.length : GSM7_EXTENSION.has(char) ? 2 : 1

// Never more segments than this is meaningful; and at least one, so that a budget always admits an ellipsis.
const normalizeSegments = (maxSegments: number): number => Math.max(1, Math.floor(maxSegments))

/**
 * The encoding a text needs: GSM-7 when every character is in the GSM 03.38 basic set or its extension table,
 * UCS-2 as soon as one is not (`’`, `á`, `ç`, any CJK character, any emoji).
 *
 * @example
 * ```ts
 * import * as SmsText from "tenant-infra/SmsText"
 *
 * SmsText.encodingOf("Café {ok}") // "GSM-7"
 * SmsText.encodingOf("It’s ok") // "UCS-2": the curly quote is not in GSM-7
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const encodingOf = (text: string): Encoding => {
  for (const char of text) {
    if (!isGsm7(char)) return "UCS-2"
  }
  return "GSM-7"
}

/**
 * A text's length in its encoding: septets for GSM-7 (extension table characters count 2), UTF-16 code units
 * for UCS-2 (a character beyond the Basic Multilingual Plane, such as most emoji, counts 2).
 *
 * @since 0.1.0
 * @category utils
 */
export const lengthOf = (text: string): number => {
  const encoding = encodingOf(text)
  if (encoding === "UCS-2") return text.length
  let length = 0
  for (const char of text) length += costOf(char, encoding)
  return length
}

/**
 * The number of segments a text takes: 1 when it fits a single segment (160 septets or 70 UCS-2 units),
 * otherwise as many concatenated segments of 153 septets or 67 units as a gateway fills with whole characters,
 * never splitting an escape pair or a surrogate pair. That can be one more than `length / 153` rounded up.
 * An empty text still takes one segment.
 *
 * @since 0.1.0
 * @category utils
 */
export const segmentsOf = (text: string): number => {
  const encoding = encodingOf(text)
  const costs = Array.from(text, (char) => costOf(char, encoding))
  const length = costs.reduce((sum, cost) => sum + cost, 0)
  if (length <= SINGLE_SEGMENT_LIMIT[encoding]) return 1
  const limit = CONCATENATED_SEGMENT_LIMIT[encoding]
  let segments = 1
  let used = 0
  for (const cost of costs) {
    if (used + cost > limit) {
      segments++
      used = 0
    }
    used += cost
  }
  return segments
}

/**
 * A text's encoding, length and segment count at once: what to record, or to check against a budget, when a
 * message is rendered.
 *
 * @since 0.1.0
 * @category utils
 */
export const measure = (text: string): Measurement => ({
  encoding: encodingOf(text),
  length: lengthOf(text),
  segments: segmentsOf(text)
})

/**
 * Whether a text fits in `maxSegments` segments (default 1; values below 1 count as 1).
 *
 * @since 0.1.0
 * @category utils
 */
export const fits = (text: string, maxSegments = 1): boolean => segmentsOf(text) <= normalizeSegments(maxSegments)

// Shortening works on grapheme clusters, so that no cut separates a surrogate pair, a letter from its combining
// accent, or the parts of an emoji sequence.
const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" })

const graphemesOf = (text: string): ReadonlyArray<string> => Array.from(segmenter.segment(text), (s) => s.segment)

// How far back a cut may move to land on a space: a few characters, and never more than a quarter of what is
// kept, so that a short budget is not spent on tidiness.
const WORD_BOUNDARY_REACH = 12

const isSpace = (grapheme: string): boolean => /^\s+$/u.test(grapheme)

/**
 * Where to cut `graphemes` when at most `count` of them may be kept: at `count` if that is between words (or
 * between characters of a script written without spaces), else at the last space within reach.
 */
const wordCut = (graphemes: ReadonlyArray<string>, count: number): number => {
  const next = graphemes[count]
  if (next === undefined || isSpace(next)) return count
  const reach = Math.min(WORD_BOUNDARY_REACH, Math.floor(count / 4))
  for (let index = count - 1; index >= count - reach; index--) {
    const grapheme = graphemes[index]
    if (grapheme !== undefined && isSpace(grapheme)) return index
  }
  return count
}

// What is left at the end of a cut before the ellipsis: spaces and punctuation that would read badly before
// it ("Acme, ...", "Inc...."), in ASCII and full width.
const TRAILING_AT_CUT = /[\s.,;:\-–—(（，、；：．。“‘]+$/u

const prefixOf = (graphemes: ReadonlyArray<string>, count: number): string =>
  graphemes.slice(0, count).join("").replace(TRAILING_AT_CUT, "")

/** "..." keeps a GSM-7 text in GSM-7 (3 septets); "…" costs one unit in a text that is UCS-2 anyway. */
const ellipsisFor = (text: string): string => encodingOf(text) === "GSM-7" ? "..." : "…"

/**
 * The largest `count` in `[0, upper]` for which `fitsAt(count)` holds, given that it holds for 0. Fitting only
 * gets easier as the kept part shrinks, so a binary search finds it; only counts that were checked are returned,
 * so the result fits even if that ever failed to hold exactly.
 */
const largestFitting = (upper: number, fitsAt: (count: number) => boolean): number => {
  let low = 0
  let high = upper
  while (low < high) {
    const middle = Math.ceil((low + high) / 2)
    if (fitsAt(middle)) low = middle
    else high = middle - 1
  }
  return low
}

/**
 * Cuts `graphemes` as little as `fitsAt` allows, then moves the cut back to a word boundary when one is near and
 * the result still fits. `undefined` when not even an empty kept part fits.
 */
const cut = (graphemes: ReadonlyArray<string>, fitsAt: (count: number) => boolean): number | undefined => {
  if (!fitsAt(0)) return undefined
  const longest = largestFitting(graphemes.length - 1, fitsAt)
  const atWord = wordCut(graphemes, longest)
  return atWord !== longest && fitsAt(atWord) ? atWord : longest
}

/**
 * The longest prefix of `text` that fits in `maxSegments` segments (default 1) together with an ellipsis,
 * which is counted too: `"..."` when the result is GSM-7, `"…"` when it is UCS-2. The cut falls at a word
 * boundary when one is near, else between two characters (text in scripts written without spaces, such as
 * Chinese, is cut between characters); it never splits a surrogate pair, an escape pair or a character from
 * its accents. Returns `text` itself when it already fits.
 *
 * Cutting off the only non-GSM characters turns the rest into GSM-7, with its larger budget; that is accounted
 * for.
 *
 * @example
 * ```ts
 * import * as SmsText from "tenant-infra/SmsText"
 *
 * SmsText.shorten("word ".repeat(40)) // "word word ... word..." in 160 septets or fewer
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const shorten = (text: string, maxSegments = 1): string => {
  if (fits(text, maxSegments)) return text
  const graphemes = graphemesOf(text)
  const candidate = (count: number): string => {
    const prefix = prefixOf(graphemes, count)
    return prefix + ellipsisFor(prefix)
  }
  // An ellipsis alone always fits one segment, so there is always a cut.
  const count = cut(graphemes, (n) => fits(candidate(n), maxSegments)) ?? 0
  return candidate(count)
}

/**
 * Renders a message around a value (a tenant name, say) so that it fits in `maxSegments` segments (default 1),
 * shortening the value rather than the message: the fixed words survive and the value loses as little as
 * needed, ending with an ellipsis (the same cut rules as {@link shorten}). Returns `render(value)` when that
 * fits; when not even `render("")` fits, returns `shorten(render(""), maxSegments)`.
 *
 * A single character outside GSM-7 in the value (`’`, an emoji, a Chinese name) switches the whole message to
 * UCS-2 and its 70-unit budget; the fit is computed on the rendered text, so that is accounted for, and cutting
 * such characters off the value can bring the message back to GSM-7.
 *
 * @example
 * ```ts
 * import * as SmsText from "tenant-infra/SmsText"
 *
 * SmsText.fitTemplate((name) => `Your tenant ${name} is now active.`, "Acme ".repeat(40))
 * // "Your tenant Acme Acme ... Acme... is now active."
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const fitTemplate = (render: (value: string) => string, value: string, maxSegments = 1): string => {
  const full = render(value)
  if (fits(full, maxSegments)) return full
  const empty = render("")
  if (!fits(empty, maxSegments)) return shorten(empty, maxSegments)
  const graphemes = graphemesOf(value)
  const rendered = (count: number): string => {
    const prefix = prefixOf(graphemes, count)
    // The ellipsis follows the message's encoding: "..." keeps a GSM-7 message in GSM-7.
    return render(prefix + ellipsisFor(render(prefix)))
  }
  const count = cut(graphemes, (n) => fits(rendered(n), maxSegments))
  return count === undefined ? empty : rendered(count)
}
