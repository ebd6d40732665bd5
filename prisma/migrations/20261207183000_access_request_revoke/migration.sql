-- An approved access request revoked before its grant's end: who, when, why (status "revoked")
ALTER TABLE "AccessRequest" ADD COLUMN "revokedBy" TEXT,
ADD COLUMN "revokedAt" TIMESTAMPTZ(3),
ADD COLUMN "revokeReason" TEXT;
