/**
 * Tenant data made fit for a message: one line for names, codes, actors and headers, several for a reason, and a
 * bounded length. Tenant data is attacker-controlled, so nothing here trusts it to be short or printable.
 */

// Bidirectional controls can make a name read differently from what it is (a right-to-left override turns
// "invoice‮fdp.exe" into "invoiceexe.pdf"); they have no business in a name, a code or a reason. Nor has the
// byte order mark, an invisible character that `\s` would otherwise turn into a space.
const INVISIBLE_MARKS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\uFEFF]/gu
const LINE_BREAKS = /\r\n|[\r\u2028\u2029\u0085]/gu
const CONTROLS_AND_SPACE = /[\p{Cc}\p{Z}\s]+/gu
const CONTROLS_BUT_NEWLINE = /[^\P{Cc}\n\t]/gu

/** One line: runs of control and space characters become one space. */
export const singleLine = (value: string): string =>
  value.replace(INVISIBLE_MARKS, "").replace(CONTROLS_AND_SPACE, " ").trim()

// In a header, invisible characters make it read differently from what it holds, and a lone surrogate cannot be
// encoded; the body keeps zero-width joiners and non-joiners, which some scripts and emoji need.
const INVISIBLE_OR_BROKEN = /[\p{Cf}\p{Cs}]/gu

/** One line fit for a header: {@link singleLine} without format characters or lone surrogates. */
export const headerLine = (value: string): string => singleLine(value.replace(INVISIBLE_OR_BROKEN, ""))

/** Several lines: line breaks unified to `\n`, other control characters dropped. */
export const multiLine = (value: string): string =>
  value.replace(INVISIBLE_MARKS, "").replace(LINE_BREAKS, "\n").replace(CONTROLS_BUT_NEWLINE, "").trim()

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" })

export const codePointsOf = (value: string): number => {
  let count = 0
  for (const _ of value) count++
  return count
}

/** At most `max` code points of `value`, cut between whole characters, with "…" when anything was cut. */
export const clip = (value: string, max: number): string => {
  if (codePointsOf(value) <= max) return value
  let kept = ""
  let used = 0
  for (const { segment } of graphemes.segment(value)) {
    const size = codePointsOf(segment)
    if (used + size > max - 1) break
    kept += segment
    used += size
  }
  return kept.trimEnd() + "…"
}
