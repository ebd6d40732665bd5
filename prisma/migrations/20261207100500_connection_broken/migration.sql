-- AlterTable
ALTER TABLE "Connection" ADD COLUMN     "brokenReason" TEXT,
ADD COLUMN     "brokenSince" TIMESTAMPTZ(3);
