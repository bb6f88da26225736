import { assert, describe, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import * as NotificationTemplates from "../src/NotificationTemplates.js"
import type { RenderedEmail, TemplateData } from "../src/NotificationTemplates.js"
import * as SmsText from "../src/SmsText.js"
import * as Tenant from "../src/Tenant.js"

const occurredAt = new Date("2024-03-01T09:00:00.000Z")
const ISO_TIME = "2024-03-01T09:00:00Z"

const data = (overrides: Partial<TemplateData> = {}): TemplateData => ({
  tenantName: "Acme Inc.",
  tenantCode: "acme",
  occurredAt,
  actor: "ops@acme.test",
  ...overrides
})

type Render = (data: TemplateData, locale: Tenant.Locale) => RenderedEmail

const renderEmail = (template: NotificationTemplates.Template): Render => (data, locale) =>
  NotificationTemplates.render("email", template, data, locale)

const sms = (data: TemplateData, locale: Tenant.Locale): string =>
  NotificationTemplates.render("sms", "activated", data, locale)

interface Words {
  readonly subject: string
  readonly text: ReadonlyArray<string>
}

/** Each e-mail template with words its subject and its text must hold in each locale. */
const templates: ReadonlyArray<
  readonly [name: string, render: Render, words: { readonly [L in Tenant.Locale]: Words }]
> = [
  ["welcome", renderEmail("welcome"), {
    "zh-CN": { subject: "欢迎加入我们的平台", text: ["欢迎加入我们的平台", "待激活", "创建时间"] },
    en: { subject: "Welcome to our platform", text: ["Welcome to our platform", "awaiting activation", "Created"] }
  }],
  ["activated", renderEmail("activated"), {
    "zh-CN": { subject: "已成功激活", text: ["已成功激活", "激活时间"] },
    en: { subject: "is now active", text: ["has been activated", "ready to use", "Activated"] }
  }],
  ["suspended", renderEmail("suspended"), {
    "zh-CN": { subject: "已被暂停", text: ["已被暂停", "暂停时间", "原因"] },
    en: { subject: "has been suspended", text: ["has been suspended", "Suspended", "Reason"] }
  }],
  ["deleted", renderEmail("deleted"), {
    "zh-CN": { subject: "已被删除", text: ["已被删除", "删除时间", "原因"] },
    en: { subject: "has been deleted", text: ["has been deleted", "Deleted", "Reason"] }
  }],
  ["restored", renderEmail("restored"), {
    "zh-CN": { subject: "已恢复", text: ["已恢复", "暂停状态", "重新激活", "恢复时间"] },
    en: { subject: "has been restored", text: ["has been restored", "remains suspended", "activated", "Restored"] }
  }]
]

const locales: ReadonlyArray<Tenant.Locale> = ["zh-CN", "en"]

/** Every (template, locale) pair, for suites that hold for all of them. */
const everyEmail = templates.flatMap(([name, render]) =>
  locales.map((locale) => ({ label: `${name} (${locale})`, render, locale }))
)

const ALLOWED_TAGS = new Set([
  "!doctype",
  "html",
  "head",
  "meta",
  "title",
  "body",
  "p",
  "br",
  "table",
  "tr",
  "th",
  "td"
])

/** The tag names in a document; anything a payload smuggled in shows up here. */
const tagsOf = (html: string): Array<string> =>
  Array.from(html.matchAll(/<\/?([!a-z][a-z0-9]*)/gi), (match) => (match[1] ?? "").toLowerCase())

const CONTROL_CHARACTERS = /[\u0000-\u001F\u007F-\u009F\u2028\u2029\u202A-\u202E\u2066-\u2069]/

const isTenantName = Schema.is(Tenant.TenantName)

describe("NotificationTemplates", () => {
  describe("every e-mail", () => {
    for (const [name, render, words] of templates) {
      for (const locale of locales) {
        it(`${name} (${locale}) has a subject, a text and an HTML part in its language`, () => {
          const email = render(data(), locale)
          assert.isNotEmpty(email.subject)
          assert.isNotEmpty(email.text)
          assert.isNotEmpty(email.html)
          for (const word of words[locale].text) {
            assert.include(email.text, word)
            assert.include(email.html, word)
          }
          assert.include(email.subject, words[locale].subject)
          assert.include(email.subject, "Acme Inc.")
          assert.include(email.text, "Acme Inc.")
          assert.include(email.text, "acme")
          assert.include(email.text, ISO_TIME)
          assert.include(email.text, "ops@acme.test")
          assert.include(email.html, "Acme Inc.")
          assert.include(email.html, ISO_TIME)
          assert.include(email.html, `<html lang="${locale}">`)
          if (locale === "en") {
            // Plain English: nothing but ASCII around ASCII data.
            assert.match(email.text, /^[\x20-\x7E\n]+$/)
          } else {
            assert.match(email.subject, /[\u4E00-\u9FFF]/)
            assert.match(email.text, /您好/)
          }
        })
      }
    }
  })

  describe("HTML escaping", () => {
    for (const { label, locale, render } of everyEmail) {
      it(`${label}: a <script> name is text in HTML and raw in the text part`, () => {
        const email = render(data({ tenantName: "<script>alert(1)</script>" }), locale)
        assert.notInclude(email.html, "<script")
        assert.include(email.html, "&lt;script&gt;alert(1)&lt;/script&gt;")
        assert.include(email.text, "<script>alert(1)</script>")
        assert.include(email.subject, "<script>alert(1)</script>")
        assert.isTrue(tagsOf(email.html).every((tag) => ALLOWED_TAGS.has(tag)), email.html)
      })
    }

    it("escapes & < > \" ' in names, codes, actors and reasons", () => {
      const email = renderEmail("suspended")(
        data({
          tenantName: "Tom & \"Jerry's\"",
          tenantCode: "<b>code</b>",
          actor: "<img src=x onerror=alert(1)>",
          reason: "'quoted' & <i>tagged</i>"
        }),
        "en"
      )
      assert.include(email.html, "Tom &amp; &quot;Jerry&#39;s&quot;")
      assert.include(email.html, "&lt;b&gt;code&lt;/b&gt;")
      assert.include(email.html, "&lt;img src=x onerror=alert(1)&gt;")
      assert.include(email.html, "&#39;quoted&#39; &amp; &lt;i&gt;tagged&lt;/i&gt;")
      assert.notInclude(email.html, "Jerry's")
      assert.isTrue(tagsOf(email.html).every((tag) => ALLOWED_TAGS.has(tag)), email.html)
      assert.include(email.text, "Tom & \"Jerry's\"")
    })

    it("keeps a link smuggled into a name from becoming markup", () => {
      const email = renderEmail("welcome")(
        data({ tenantName: "</div><a href=\"https://evil.example\">Verify</a>" }),
        "zh-CN"
      )
      assert.notInclude(email.html, "<a ")
      assert.notInclude(email.html, "href=\"https://evil.example\"")
      assert.isTrue(tagsOf(email.html).every((tag) => ALLOWED_TAGS.has(tag)), email.html)
    })

    it("html escapes interpolated strings and keeps fragments", () => {
      const { html } = NotificationTemplates
      const inner = html`<b>${"<i>"}</b>`
      assert.strictEqual(
        html`<p>${inner}${[inner, inner]}${42}${"\"'&"}</p>`.value,
        "<p>" +
          "<b>&lt;i&gt;</b>".repeat(3) + "42&quot;&#39;&amp;</p>"
      )
      assert.strictEqual(
        NotificationTemplates.escapeHtml("<a href='x'>&\"</a>"),
        "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
      )
    })
  })

  describe("subject", () => {
    it("puts a name with CR/LF on one line", () => {
      const email = renderEmail("welcome")(data({ tenantName: "Acme\r\nBcc: evil@example.com" }), "en")
      assert.strictEqual(email.subject, "Welcome to our platform: Acme Bcc: evil@example.com")
      assert.notInclude(email.text, "\nBcc:")
    })

    for (const { label, locale, render } of everyEmail) {
      it(`${label}: carries no control character, line break or bidi override from tenant data`, () => {
        const email = render(
          data({ tenantName: "\tAcme\u0000\r\n\u2028 Ltd\u202E\u0085 ", tenantCode: "ac\nme" }),
          locale
        )
        assert.notMatch(email.subject, CONTROL_CHARACTERS)
        assert.include(email.subject, "Acme Ltd")
        assert.strictEqual(email.subject, email.subject.trim())
      })

      it(`${label}: stays within ${NotificationTemplates.SUBJECT_MAX_LENGTH} characters, shortening the name`, () => {
        for (const tenantName of ["Acme Holdings ".repeat(40), "北京星辰科技有限公司".repeat(30)]) {
          const { subject } = render(data({ tenantName }), locale)
          assert.isAtMost([...subject].length, NotificationTemplates.SUBJECT_MAX_LENGTH)
          assert.include(subject, "…")
          assert.include(subject, tenantName.slice(0, 20))
        }
      })
    }

    it("keeps a Chinese name intact", () => {
      const tenantName = "北京星辰科技有限公司（上海分公司）"
      assert.strictEqual(
        renderEmail("welcome")(data({ tenantName }), "zh-CN").subject,
        `欢迎加入我们的平台：${tenantName}`
      )
      assert.strictEqual(
        renderEmail("suspended")(data({ tenantName }), "zh-CN").subject,
        `租户“${tenantName}”已被暂停`
      )
      assert.strictEqual(
        renderEmail("activated")(data({ tenantName }), "en").subject,
        `Your tenant ${tenantName} is now active`
      )
    })
  })

  describe("reason", () => {
    const withReason: ReadonlyArray<readonly [string, Render]> = [
      ["suspended", renderEmail("suspended")],
      ["deleted", renderEmail("deleted")]
    ]

    for (const [name, render] of withReason) {
      for (const locale of locales) {
        it(`${name} (${locale}) keeps the reason's line breaks: as lines in text, as <br> in HTML`, () => {
          const email = render(data({ reason: "Unpaid invoice <#42>\r\nSecond notice" }), locale)
          assert.include(email.text, "Unpaid invoice <#42>\nSecond notice")
          assert.notInclude(email.text, "\r")
          assert.include(email.html, "Unpaid invoice &lt;#42&gt;<br>Second notice")
        })
      }

      it(`${name} says plainly that no reason was given`, () => {
        assert.include(render(data(), "en").text, "Reason: No reason given")
        assert.include(render(data(), "en").html, "No reason given")
        assert.include(render(data(), "zh-CN").text, "原因：未提供原因")
        assert.include(render(data(), "zh-CN").html, "未提供原因")
      })
    }

    it("restored shows a reason only when one was given", () => {
      assert.notInclude(renderEmail("restored")(data(), "en").text, "Reason")
      assert.notInclude(renderEmail("restored")(data(), "zh-CN").text, "原因")
      assert.include(
        renderEmail("restored")(data({ reason: "Paid in full" }), "en").text,
        "Reason: Paid in full"
      )
    })

    it("the welcome e-mail has no reason line", () => {
      assert.notInclude(renderEmail("welcome")(data({ reason: "x" }), "en").text, "Reason")
    })
  })

  describe("render", () => {
    it("has an SMS only for the templates that have one (checked by the compiler)", () => {
      // @ts-expect-error: there is no welcome SMS
      const _welcomeSms = () => NotificationTemplates.render("sms", "welcome", data(), "en")
      const text: string = NotificationTemplates.render("sms", "activated", data(), "en")
      const email: RenderedEmail = NotificationTemplates.render("email", "activated", data(), "en")
      assert.include(text, "Acme Inc.")
      assert.include(email.subject, "Acme Inc.")
    })
  })

  describe("activated SMS", () => {
    const latinName = "Northwind Traders International Holdings Group & Partners (Asia-Pacific) Limited Company Ltd"
      .padEnd(100, "x")
    const chineseName = "北京星辰科技有限公司".repeat(10)
    const fixedWords: { readonly [L in Tenant.Locale]: ReadonlyArray<string> } = {
      "zh-CN": ["您的租户“", "”已成功激活，现在可以开始使用。"],
      en: ["Your tenant ", " is now active and ready to use."]
    }

    it("test names are valid 100-character tenant names", () => {
      assert.strictEqual([...latinName].length, 100)
      assert.strictEqual([...chineseName].length, 100)
      assert.isTrue(isTenantName(latinName))
      assert.isTrue(isTenantName(chineseName))
    })

    for (const locale of locales) {
      for (const [label, tenantName] of [["Latin", latinName], ["Chinese", chineseName]] as const) {
        it(`${locale} with a 100-character ${label} name is one segment and keeps its fixed words`, () => {
          const text = sms(data({ tenantName }), locale)
          assert.strictEqual(SmsText.segmentsOf(text), 1)
          for (const word of fixedWords[locale]) assert.include(text, word)
          assert.include(text, tenantName.slice(0, 10))
        })
      }
    }

    it("zh-CN is UCS-2 within 70 units, shortening the name with '…'", () => {
      const text = sms(data({ tenantName: chineseName }), "zh-CN")
      assert.strictEqual(SmsText.encodingOf(text), "UCS-2")
      assert.strictEqual(SmsText.lengthOf(text), 70)
      assert.include(text, "…")
    })

    it("en is GSM-7 for a Latin name, and UCS-2 when the name needs it", () => {
      const latin = sms(data({ tenantName: latinName }), "en")
      assert.strictEqual(SmsText.encodingOf(latin), "GSM-7")
      assert.include(latin, latinName)
      const long = sms(data({ tenantName: `${latinName} ${latinName}` }), "en")
      assert.strictEqual(SmsText.encodingOf(long), "GSM-7")
      assert.isAtMost(SmsText.lengthOf(long), 160)
      assert.include(long, "...")
      const chinese = sms(data({ tenantName: chineseName }), "en")
      assert.strictEqual(SmsText.encodingOf(chinese), "UCS-2")
      assert.isAtMost(SmsText.lengthOf(chinese), 70)
    })

    it("keeps a short name whole", () => {
      assert.strictEqual(
        sms(data(), "en"),
        "Your tenant Acme Inc. is now active and ready to use."
      )
      assert.strictEqual(
        sms(data({ tenantName: "星辰科技" }), "zh-CN"),
        "您的租户“星辰科技”已成功激活，现在可以开始使用。"
      )
    })

    it("sends a curly apostrophe as ' so that an English text stays GSM-7", () => {
      const text = sms(data({ tenantName: "O’Brien & Sons" }), "en")
      assert.strictEqual(text, "Your tenant O'Brien & Sons is now active and ready to use.")
      assert.strictEqual(SmsText.encodingOf(text), "GSM-7")
    })

    it("puts a name with line breaks on one line", () => {
      const text = sms(data({ tenantName: "Acme\r\nInc." }), "en")
      assert.strictEqual(text, "Your tenant Acme Inc. is now active and ready to use.")
    })
  })
})
