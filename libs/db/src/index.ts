export { createPrismaClient, DEFAULT_DATABASE_URL } from './client.js';
export { ensureDatabase, migrate, MigrationError, type MigrateResult } from './migrate.js';
export { PrismaClient, Prisma } from './generated/prisma/client.js';
export type * from './generated/prisma/models.js';
export {
  SigningKeyStore, loadActiveSigningKey, signingMasterKeyId, SigningKeyError, NoSigningKeyError, type ActiveSigningKey, type SigningPublicJwk,
} from './signing-keys.js';
export { recordApprovalJob } from './approval-records.js';
