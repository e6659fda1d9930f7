export * from './upload';
export * from './download';
export * from './errors';
export { type RetryPolicy, DEFAULT_RETRY, backoffMs } from './retry';
export { createActor, Backend } from './bindings/backend';
export type * from './bindings/backend';
