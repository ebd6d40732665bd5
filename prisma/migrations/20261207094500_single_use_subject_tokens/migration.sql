-- AlterTable
ALTER TABLE "TrustPolicy" ADD COLUMN     "singleUse" BOOLEAN NOT NULL DEFAULT false;

-- CreateTable
CREATE TABLE "ExchangedSubjectToken" (
    "id" TEXT NOT NULL,
    "trustPolicy" TEXT NOT NULL,
    "expiresAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "ExchangedSubjectToken_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "ExchangedSubjectToken_expiresAt_idx" ON "ExchangedSubjectToken"("expiresAt");
