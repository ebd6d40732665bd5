-- The access request a gateway credential was minted under (its claim `grant`), so that revoking the
-- grant can revoke, and emit token.revoked for, each credential resting on it. Credentials minted before
-- this migration keep NULL: gateways still refuse them through the snapshot's revokedGrants.
-- AlterTable
ALTER TABLE "Token" ADD COLUMN     "grantId" UUID;

-- CreateIndex
CREATE INDEX "Token_grantId_idx" ON "Token"("grantId");
