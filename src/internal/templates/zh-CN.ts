/**
 * The Simplified Chinese copy of every notification.
 */
import type { LocaleCopy, Words } from "./copy.js"
import { standardBody } from "./copy.js"

const words: Words = {
  colon: "：",
  greeting: (name) => `${name} 管理员，您好：`,
  name: "租户名称",
  code: "租户代码",
  actor: "操作人",
  reason: "原因",
  noReason: "未提供原因",
  footer: "此邮件由系统自动发送。"
}

export const copy: LocaleCopy = {
  words,
  emails: {
    welcome: {
      subject: (name) => `欢迎加入我们的平台：${name}`,
      body: (values) =>
        standardBody(words, values, {
          message: "欢迎加入我们的平台！您的租户已创建成功，目前处于待激活状态，激活后即可开始使用。",
          timeLabel: "创建时间（UTC）",
          reason: "never"
        })
    },
    activated: {
      subject: (name) => `租户“${name}”已成功激活`,
      body: (values) =>
        standardBody(words, values, {
          message: `您的租户“${values.name}”已成功激活，现在可以开始使用。`,
          timeLabel: "激活时间（UTC）",
          reason: "whenGiven"
        })
    },
    suspended: {
      subject: (name) => `租户“${name}”已被暂停`,
      body: (values) =>
        standardBody(words, values, {
          message: `您的租户“${values.name}”已被暂停，暂停期间无法使用。如有疑问，请联系平台管理员。`,
          timeLabel: "暂停时间（UTC）",
          reason: "always"
        })
    },
    deleted: {
      subject: (name) => `租户“${name}”已被删除`,
      body: (values) =>
        standardBody(words, values, {
          message: `您的租户“${values.name}”已被删除。如果这不是您预期的操作，请尽快联系平台管理员。`,
          timeLabel: "删除时间（UTC）",
          reason: "always"
        })
    },
    restored: {
      subject: (name) => `租户“${name}”已恢复`,
      body: (values) =>
        standardBody(words, values, {
          message: `您的租户“${values.name}”已恢复，目前处于暂停状态，重新激活后即可使用。`,
          timeLabel: "恢复时间（UTC）",
          reason: "whenGiven"
        })
    }
  },
  sms: {
    activated: (name) => `您的租户“${name}”已成功激活，现在可以开始使用。`
  }
}
