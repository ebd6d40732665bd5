export { PortcullisError, SchemaError, SealError, EnvError } from './errors.js';
export { formatIssues, parseWith, parseEnv, parseEnvOrThrow, loadEnvOrExit } from './validate.js';
export { LOG_LEVELS, logLevelSchema, portSchema, tokenNameSchema, masterKeySchema } from './env.js';
export { canonicalJson, canonicalJsonFast, chainHash, GENESIS_HASH } from './canonical.js';
export {
  chainedEventHash, chainedEventHashFast, normaliseTime, toRecordedEvent, type ChainedEvent, type EventRow,
} from './recorded-event.js';
export { checkpointKey, checkpointPayload, type CheckpointKey } from './checkpoint.js';
export { natsNames, eventPartition, EVENT_PARTITIONS, DEFAULT_NATS_PREFIX, APPROVALS_QUEUE, type NatsNames } from './subjects.js';
export {
  DUPLICATE_WINDOW_NS, CONFIG_BUCKET_SETTINGS, eventStreamSettings, deadLetterStreamSettings, ensureStream, ensureBucket,
  type StreamSettings, type StreamAdmin, type BucketAdmin,
} from './streams.js';
export {
  ControlEventPublisher, CONTROL_EVENT_MAX_PENDING, CONTROL_EVENT_RETRY_MS,
  type ControlEventInput, type ControlEventHooks, type ControlEventPublisherOptions, type EventPublishClient,
} from './control-events.js';
export { natsConnectOptions, redactNatsUrl, type NatsConnectOptions } from './nats-url.js';
export {
  wireEventSchema, signEvent, verifyEventSignature, CONTROL_CHAIN, EVENT_TYPES, SESSION_EVENT_TYPES, CONTROL_EVENT_TYPES,
  TERMINAL_STREAM_EVENTS, terminalEventDataSchema, type TerminalEventData,
  type WireEvent, type RecordedEvent, type EventType,
} from './events.js';
export {
  EVENT_BATCH_SIG_HEADER, MAX_EVENT_BATCH_BYTES, MAX_EVENT_BATCH_EVENTS, signEventBatchBody, verifyEventBatchBody, encodeEventBatch,
  type UnsignedWireEvent,
} from './event-batch.js';
export {
  parseMasterKey, deriveKey, encryptAtRest, decryptAtRest, sealForPool, openSealed, generatePoolKeyPair, sealedSecretSchema,
  type SealedSecret, type PoolKeyPair,
} from './keys.js';
export {
  configSnapshotSchema, connectionConfigSchema, heartbeatSchema, publicJwkSchema, CONFIG_SNAPSHOT_TYP, signedConfigSnapshotSchema, signConfigSnapshot,
  verifyConfigSnapshot, type ConfigSnapshot, type ConnectionConfig, type Heartbeat,
  CONNECTION_KINDS, connectionSecretContext, SSH_HOST_KEY_CONTEXT, GATEWAY_TLS_KEY_CONTEXT, sshPublicKeyLineSchema, sshConnectionFieldsSchema,
  kubernetesConnectionFieldsSchema, sshTargetSecretSchema, kubernetesTargetSecretSchema, poolSshConfigSchema, poolTlsConfigSchema,
  isSshConnection, isKubernetesConnection, type ConnectionKind, type SshConnectionConfig, type KubernetesConnectionConfig, type SshTargetSecret,
  type KubernetesTargetSecret, type PoolSshConfig, type PoolTlsConfig,
} from './config.js';
export {
  SignatureError, ed25519PublicJwkSchema, parseTrustedKeys, signCompactJws, verifyCompactJws, type Ed25519PublicJwk, type JwsKeyCache, type JwsSigningKey,
} from './jws.js';
export {
  API_AUDIENCE, GATEWAY_AUDIENCE, TOKEN_ALG, ROLES, apiTokenClaimsSchema, gatewayTokenClaimsSchema, gatewayCredentialSchema,
  type Role, type ApiTokenClaims, type GatewayTokenClaims, type GatewayCredential,
} from './tokens.js';
export { Base64UrlError, decodeBase64UrlStrict, assertCompactJws } from './base64url.js';
export { AuthFailureAggregator, AUTH_FAILURE_WINDOW_MS, AUTH_FAILURE_MAX_KEYS, type AuthFailure, type AuthFailedData } from './auth-failures.js';
export { mayUseConnection, accessCallerOf, credentialAllows, type AccessGrant, type AccessCaller, type AccessDecision } from './access-rule.js';
export {
  approvalJobSchema, approvalConsequenceSchema, type ApprovalConsequence, approvalDecisionSchema, APPROVAL_STATUSES, approvalSubjects, approvalCancelSchema, approvalRequestedSchema, type ApprovalRequested, approvalConsumeRequestSchema,
  approvalConsumeResultSchema, signApprovalMessage, verifyApprovalMessage, approvalDecisionOf, approvalDecidedEventData,
  type DecidedApprovalRow, type ApprovalJob, type ApprovalDecision, type ApprovalCancel, type ApprovalConsumeRequest, type ApprovalConsumeResult,
} from './approvals.js';
export * from './postgres/index.js';
export {
  SshKeyError, ed25519PublicBlob, ed25519PublicKeyLine, ed25519ToOpenSshPrivateKey, ed25519FromOpenSshPrivateKey, generateSshEd25519, parseSshPublicKeyLine,
  signSshCertificate, parseSshCertificate, verifySshCertificateSignature, sshKeySha256, parseSshPublicKeyBlob, verifySshSignature, sshBlobType, type SshPublicKey, type SshCertificate, type SshCertificateRequest,
} from './ssh-keys.js';
export { TlsCertError, generateGatewayCa, issueGatewayServerCert, certificateDaysLeft, type GatewayTlsCa, type GatewayTlsCert } from './tls-certs.js';
export { FILE_OPERATIONS, type FileOperation } from './file-operations.js';
