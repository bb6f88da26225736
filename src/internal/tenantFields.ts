/**
 * The tenant's fields as every layer handles them outside the schema: how each is copied, which columns of the
 * `tenants` table hold it and how it is read back from them. The list of fields is the schema's
 * (`Tenant.fields`, in its order); the rules are a record keyed by it, so a field added to the schema without
 * a rule here does not compile, and every copy and row mapping below is derived from them.
 */
import type * as Schema from "effect/Schema"
import * as Struct from "effect/Struct"
import { Tenant } from "../Tenant.js"

/** The tenant's fields as a plain object: what `new Tenant` takes and `reconstitute` gives back. */
export type TenantProps = Schema.Struct.Type<typeof Tenant.fields>

type Field = keyof TenantProps

type Value<K extends Field> = NonNullable<TenantProps[K]>
type Building = { -readonly [K in Field]?: TenantProps[K] }

/** A row of the `tenants` table, as read: every column a field is stored in. */
export interface TenantRow {
  readonly id: string
  readonly code: string
  readonly name: string
  readonly status: string
  readonly email: string
  readonly phone: string | null
  readonly locale: string
  readonly domain: string | null
  readonly settings: unknown
  readonly version: number
  readonly created_at: Date
  readonly updated_at: Date
  readonly deleted_at: Date | null
  readonly status_changed_by: string | null
  readonly status_change_reason: string | null
  readonly status_changed_at: Date | null
}

interface FieldRule<K extends Field> {
  /** A copy that shares nothing mutable with `value`. */
  readonly copy: (value: Value<K>) => Value<K>
  /** The columns that hold the field, an absent field as `null`s. */
  readonly write: (value: TenantProps[K]) => Partial<TenantRow>
  /** The field as `reconstitute` checks it, unchecked, or `undefined` when the row does not have it. */
  readonly read: (row: TenantRow) => unknown
}

const same = <A>(value: A): A => value
const copyDate = (date: Date): Date => new Date(date.getTime())
const present = <A>(value: A | null): A | undefined => value === null ? undefined : value

const rules: { readonly [K in Field]: FieldRule<K> } = {
  id: { copy: same, write: (id) => ({ id }), read: (row) => row.id },
  code: { copy: same, write: (code) => ({ code }), read: (row) => row.code },
  name: { copy: same, write: (name) => ({ name }), read: (row) => row.name },
  status: { copy: same, write: (status) => ({ status }), read: (row) => row.status },
  contact: {
    copy: (contact) => ({ ...contact }),
    write: (contact) => ({ email: contact.email, phone: contact.phone ?? null, locale: contact.locale }),
    read: (row) =>
      row.phone === null
        ? { email: row.email, locale: row.locale }
        : { email: row.email, phone: row.phone, locale: row.locale }
  },
  domain: { copy: same, write: (domain) => ({ domain: domain ?? null }), read: (row) => present(row.domain) },
  settings: {
    copy: (settings) => ({ ...settings }),
    write: (settings) => ({ settings: JSON.stringify(settings) }),
    read: (row) => row.settings
  },
  version: { copy: same, write: (version) => ({ version }), read: (row) => row.version },
  createdAt: { copy: copyDate, write: (at) => ({ created_at: at }), read: (row) => row.created_at },
  updatedAt: { copy: copyDate, write: (at) => ({ updated_at: at }), read: (row) => row.updated_at },
  deletedAt: { copy: copyDate, write: (at) => ({ deleted_at: at ?? null }), read: (row) => present(row.deleted_at) },
  lastStatusChange: {
    copy: (change) => ({ ...change, at: copyDate(change.at) }),
    write: (change) => ({
      status_changed_by: change?.actor ?? null,
      status_change_reason: change?.reason ?? null,
      status_changed_at: change?.at ?? null
    }),
    read: (row) =>
      row.status_changed_by === null || row.status_changed_at === null
        ? undefined
        : row.status_change_reason === null
        ? { actor: row.status_changed_by, at: row.status_changed_at }
        : { actor: row.status_changed_by, at: row.status_changed_at, reason: row.status_change_reason }
  }
}

/** The tenant's fields, in the schema's order: the order they are built in, which shows in JSON and in logs. */
export const fieldNames: ReadonlyArray<Field> = Struct.keys(Tenant.fields)

const copyField = <K extends Field>(from: TenantProps, name: K, to: Building): void => {
  const value = from[name]
  if (value !== undefined && value !== null) to[name] = rules[name].copy(value)
}

/**
 * A copy of a tenant that shares nothing mutable with it. It is built as the class's constructor builds an
 * instance (the fields assigned to an object of its prototype), minus the constructor's two copies of the fields
 * and its check: the tenant it copies was checked, and a cache hit spends a good part of its time here.
 */
export const copyTenant = (tenant: Tenant): Tenant => {
  const copy: Building = Object.create(Tenant.prototype)
  for (const name of fieldNames) copyField(tenant, name, copy)
  // Every field the tenant has was copied, and it has every required one.
  return copy as Tenant
}

const propField = <K extends Field>(from: TenantProps, name: K, to: Building): void => {
  const value = from[name]
  if (value !== undefined) to[name] = value
}

/** The tenant's fields as a plain object (shared, not copied), its optional fields present only when set. */
export const propsOf = (tenant: Tenant): TenantProps => {
  const props: Building = {}
  for (const name of fieldNames) propField(tenant, name, props)
  // Every field the tenant has was taken, and it has every required one.
  return props as TenantProps
}

const writeField = <K extends Field>(from: TenantProps, name: K): Partial<TenantRow> => rules[name].write(from[name])

/** The columns that hold a tenant's fields, absent fields as `null`s, settings as JSON. */
export const toColumns = (tenant: Tenant): TenantRow => {
  const row: Partial<TenantRow> = {}
  for (const name of fieldNames) Object.assign(row, writeField(tenant, name))
  // Each rule writes its columns, and together they write every column of a row.
  return row as TenantRow
}

/** The row as the fields `reconstitute` checks: nulls become absent fields, contact and status change regroup. */
export const rowToProps = (row: TenantRow): { readonly [K in Field]?: unknown } => {
  const props: { [K in Field]?: unknown } = {}
  for (const name of fieldNames) {
    const value = rules[name].read(row)
    if (value !== undefined) props[name] = value
  }
  return props
}
