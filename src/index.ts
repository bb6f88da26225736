/**
 * @since 0.1.0
 */
export * as CachedTenantRepository from "./CachedTenantRepository.js"

/**
 * @since 0.1.0
 */
export * as CacheError from "./CacheError.js"

/**
 * @since 0.1.0
 */
export * as CacheStore from "./CacheStore.js"

/**
 * @since 0.1.0
 */
export * as DeliveryLedger from "./DeliveryLedger.js"

/**
 * @since 0.1.0
 */
export * as InfraHealth from "./InfraHealth.js"

/**
 * @since 0.1.0
 */
export * as InvalidInput from "./InvalidInput.js"

/**
 * @since 0.1.0
 */
export * as Mailer from "./Mailer.js"

/**
 * @since 0.1.0
 */
export * as Migrations from "./Migrations.js"

/**
 * @since 0.1.0
 */
export * as NotificationTemplates from "./NotificationTemplates.js"

/**
 * @since 0.1.0
 */
export * as OutboxRelay from "./OutboxRelay.js"

/**
 * @since 0.1.0
 */
export * as SendError from "./SendError.js"

/**
 * @since 0.1.0
 */
export * as SendRetry from "./SendRetry.js"

/**
 * @since 0.1.0
 */
export * as SmsGateway from "./SmsGateway.js"

/**
 * @since 0.1.0
 */
export * as SmsText from "./SmsText.js"

/**
 * @since 0.1.0
 */
export * as Tenant from "./Tenant.js"

/**
 * @since 0.1.0
 */
export * as TenantCache from "./TenantCache.js"

/**
 * @since 0.1.0
 */
export * as TenantEvent from "./TenantEvent.js"

/**
 * @since 0.2.0
 */
export * as TenantInfra from "./TenantInfra.js"

/**
 * @since 0.1.0
 */
export * as TenantLifecycle from "./TenantLifecycle.js"

/**
 * @since 0.1.0
 */
export * as TenantNotifications from "./TenantNotifications.js"

/**
 * @since 0.1.0
 */
export * as TenantOutbox from "./TenantOutbox.js"

/**
 * @since 0.1.0
 */
export * as TenantQuery from "./TenantQuery.js"

/**
 * @since 0.1.0
 */
export * as TenantRepository from "./TenantRepository.js"

/**
 * @since 0.1.0
 */
export * as TenantRepositoryError from "./TenantRepositoryError.js"
