import { assert, describe, it } from "@effect/vitest"
import * as SmsText from "../src/SmsText.js"

// The GSM 03.38 default alphabet without ESC, written out here independently of the module under test.
const GSM7_BASIC_TABLE = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

const hasLoneSurrogate = (text: string): boolean => LONE_SURROGATE.test(text)

describe("SmsText", () => {
  describe("encodingOf and lengthOf", () => {
    it.each<[why: string, text: string, encoding: SmsText.Encoding, length: number]>([
      ["plain ASCII", "Hello, world!", "GSM-7", 13],
      ["the euro sign (extension table: 2 septets)", "€5", "GSM-7", 3],
      ["braces (extension table)", "{}", "GSM-7", 4],
      ["every extension character", "^{}\\[]~|€\f", "GSM-7", 20],
      ["é, which the basic set has", "café", "GSM-7", 4],
      ["Ä Ö Ñ Ü ß à, which the basic set has", "ÄÖÑÜßà", "GSM-7", 6],
      ["á, which the basic set lacks", "olá", "UCS-2", 3],
      ["a curly apostrophe", "It’s", "UCS-2", 4],
      ["Chinese", "租户已激活", "UCS-2", 5],
      ["an emoji (a surrogate pair: 2 units)", "Hi 👋", "UCS-2", 5],
      ["an extension character in a UCS-2 text (1 unit)", "€ 租户", "UCS-2", 4],
      ["a tab, which GSM-7 lacks", "a\tb", "UCS-2", 3],
      ["the empty text", "", "GSM-7", 0]
    ])("%s", (_why, text, encoding, length) => {
      assert.strictEqual(SmsText.encodingOf(text), encoding)
      assert.strictEqual(SmsText.lengthOf(text), length)
      assert.deepStrictEqual(SmsText.measure(text), { encoding, length, segments: 1 })
    })

    it("reads the whole GSM 03.38 basic table as GSM-7, one septet each", () => {
      assert.strictEqual([...GSM7_BASIC_TABLE].length, 127)
      assert.strictEqual(SmsText.encodingOf(GSM7_BASIC_TABLE), "GSM-7")
      assert.strictEqual(SmsText.lengthOf(GSM7_BASIC_TABLE), 127)
    })
  })

  describe("segmentsOf", () => {
    it.each<[why: string, text: string, segments: number]>([
      ["160 GSM-7 characters: one segment", "a".repeat(160), 1],
      ["161 GSM-7 characters: two of 153", "a".repeat(161), 2],
      ["306 GSM-7 characters: two full segments", "a".repeat(306), 2],
      ["307 GSM-7 characters: three", "a".repeat(307), 3],
      ["80 euro signs: 160 septets, one segment", "€".repeat(80), 1],
      ["81 euro signs: 162 septets, two segments of 76 pairs", "€".repeat(81), 2],
      ["70 Chinese characters: one segment", "中".repeat(70), 1],
      ["71 Chinese characters: two of 67", "中".repeat(71), 2],
      ["134 Chinese characters: two full segments", "中".repeat(134), 2],
      ["135 Chinese characters: three", "中".repeat(135), 3],
      ["35 emoji: 70 units, one segment", "😀".repeat(35), 1],
      ["36 emoji: 72 units, two segments", "😀".repeat(36), 2],
      ["the empty text: one segment", "", 1]
    ])("%s", (_why, text, segments) => {
      assert.strictEqual(SmsText.segmentsOf(text), segments)
    })

    it("never splits an escape pair: 306 septets with a euro sign at 153-154 take three segments", () => {
      const text = "a".repeat(152) + "€" + "a".repeat(152)
      assert.strictEqual(SmsText.lengthOf(text), 306)
      assert.strictEqual(SmsText.segmentsOf(text), 3)
    })

    it("never splits a surrogate pair: 134 units with an emoji at 67-68 take three segments", () => {
      const text = "中".repeat(66) + "😀" + "中".repeat(66)
      assert.strictEqual(SmsText.lengthOf(text), 134)
      assert.strictEqual(SmsText.segmentsOf(text), 3)
    })

    it("budgets: one segment holds 160 septets or 70 units, a concatenated one 153 or 67", () => {
      assert.deepStrictEqual(SmsText.SINGLE_SEGMENT_LIMIT, { "GSM-7": 160, "UCS-2": 70 })
      assert.deepStrictEqual(SmsText.CONCATENATED_SEGMENT_LIMIT, { "GSM-7": 153, "UCS-2": 67 })
    })
  })

  describe("fits", () => {
    it("checks one segment by default and more when asked", () => {
      assert.isTrue(SmsText.fits("a".repeat(160)))
      assert.isFalse(SmsText.fits("a".repeat(161)))
      assert.isTrue(SmsText.fits("a".repeat(306), 2))
      assert.isFalse(SmsText.fits("a".repeat(307), 2))
      assert.isTrue(SmsText.fits("中".repeat(70)))
      assert.isFalse(SmsText.fits("中".repeat(71)))
      assert.isTrue(SmsText.fits("中".repeat(134), 2))
      assert.isFalse(SmsText.fits("中".repeat(135), 2))
    })

    it("counts a budget below one segment as one", () => {
      assert.isTrue(SmsText.fits("short", 0))
    })
  })

  describe("shorten", () => {
    it("returns a text that fits unchanged", () => {
      const text = "Your tenant is now active."
      assert.strictEqual(SmsText.shorten(text), text)
      assert.strictEqual(SmsText.shorten("a".repeat(306), 2), "a".repeat(306))
    })

    it("cuts an English text at a word boundary and ends it with '...', counted", () => {
      const text = "Your tenant has been activated and is ready to use. ".repeat(5).trim()
      const short = SmsText.shorten(text)
      assert.isTrue(short.endsWith("..."))
      assert.strictEqual(SmsText.encodingOf(short), "GSM-7")
      assert.isAtMost(SmsText.lengthOf(short), 160)
      const kept = short.slice(0, -3)
      assert.isTrue(text.startsWith(kept))
      assert.isTrue(/[\s.]/.test(text.charAt(kept.length)), `cut inside a word: ${JSON.stringify(short)}`)
      assert.isAbove(SmsText.lengthOf(short), 145)
    })

    it("keeps as much as fits when no word boundary is near", () => {
      const short = SmsText.shorten("a".repeat(200))
      assert.strictEqual(short, "a".repeat(157) + "...")
      assert.strictEqual(SmsText.lengthOf(short), 160)
    })

    it("counts extension characters twice and never splits their pair", () => {
      const short = SmsText.shorten("€".repeat(100))
      assert.strictEqual(short, "€".repeat(78) + "...")
      assert.strictEqual(SmsText.lengthOf(short), 159)
    })

    it("cuts Chinese between characters and ends with '…', which costs one unit", () => {
      const text = "租户已成功激活".repeat(20)
      const short = SmsText.shorten(text)
      assert.strictEqual(short, text.slice(0, 69) + "…")
      assert.strictEqual(SmsText.encodingOf(short), "UCS-2")
      assert.strictEqual(SmsText.lengthOf(short), 70)
    })

    it("never splits a surrogate pair", () => {
      const short = SmsText.shorten("😀".repeat(50))
      assert.strictEqual(short, "😀".repeat(34) + "…")
      assert.isFalse(hasLoneSurrogate(short))
      assert.isTrue(SmsText.fits(short))
    })

    it("uses the GSM-7 budget when the cut removes the only non-GSM character", () => {
      const short = SmsText.shorten("a".repeat(200) + "中")
      assert.strictEqual(short, "a".repeat(157) + "...")
      assert.strictEqual(SmsText.encodingOf(short), "GSM-7")
    })

    it("fills several segments when allowed", () => {
      const text = "word ".repeat(100)
      const short = SmsText.shorten(text, 2)
      assert.isTrue(SmsText.fits(short, 2))
      assert.isFalse(SmsText.fits(short, 1))
      assert.isTrue(short.endsWith("word..."))
    })
  })

  describe("fitTemplate", () => {
    const en = (name: string) => `Your tenant ${name} is now active and ready to use.`
    const zh = (name: string) => `您的租户“${name}”已成功激活，现在可以开始使用。`

    it("renders the value whole when the text fits", () => {
      assert.strictEqual(SmsText.fitTemplate(en, "Acme Inc."), "Your tenant Acme Inc. is now active and ready to use.")
    })

    it("shortens a long ASCII value at a word, keeping the fixed words", () => {
      const text = SmsText.fitTemplate(en, "Acme Holdings ".repeat(20).trim())
      assert.isTrue(text.startsWith("Your tenant Acme Holdings"))
      assert.isTrue(text.endsWith("Holdings... is now active and ready to use."))
      assert.strictEqual(SmsText.encodingOf(text), "GSM-7")
      assert.isTrue(SmsText.fits(text))
      assert.isAbove(SmsText.lengthOf(text), 145)
    })

    it("shortens a Chinese value as little as needed", () => {
      const text = SmsText.fitTemplate(zh, "北京星辰科技有限公司".repeat(10))
      assert.isTrue(text.startsWith("您的租户“北京星辰"))
      assert.isTrue(text.endsWith("…”已成功激活，现在可以开始使用。"))
      assert.strictEqual(SmsText.lengthOf(text), 70)
    })

    it("accounts for a value that switches an English text to UCS-2", () => {
      const text = SmsText.fitTemplate(en, "北京星辰科技有限公司".repeat(10))
      assert.strictEqual(SmsText.encodingOf(text), "UCS-2")
      assert.isTrue(SmsText.fits(text))
      assert.isTrue(text.startsWith("Your tenant 北京星辰"))
      assert.isTrue(text.endsWith("… is now active and ready to use."))
      assert.strictEqual(SmsText.lengthOf(text), 70)
    })

    it("returns to GSM-7 when the cut removes the value's only non-GSM character", () => {
      const text = SmsText.fitTemplate(en, "a".repeat(200) + "中")
      assert.strictEqual(SmsText.encodingOf(text), "GSM-7")
      assert.strictEqual(SmsText.lengthOf(text), 160)
    })

    it("never splits an emoji in the value", () => {
      const text = SmsText.fitTemplate(en, "😀".repeat(60))
      assert.isFalse(hasLoneSurrogate(text))
      assert.isTrue(SmsText.fits(text))
      assert.isTrue(text.endsWith("😀… is now active and ready to use."))
    })

    it("honours a larger budget", () => {
      const text = SmsText.fitTemplate(en, "Acme ".repeat(100), 2)
      assert.strictEqual(SmsText.segmentsOf(text), 2)
      assert.isTrue(text.endsWith("... is now active and ready to use."))
    })

    it("falls back to shortening the whole text when not even an empty value fits", () => {
      const render = (value: string) => "x".repeat(200) + value
      assert.strictEqual(SmsText.fitTemplate(render, "Acme"), SmsText.shorten("x".repeat(200)))
    })

    it("leaves the value out when even an ellipsis is too much", () => {
      const render = (value: string) => "x".repeat(159) + value
      assert.strictEqual(SmsText.fitTemplate(render, "Acme"), "x".repeat(159))
    })
  })
})
