-- AlterTable
ALTER TABLE "Token" ADD COLUMN     "parentId" TEXT;

-- CreateIndex
CREATE INDEX "Token_parentId_idx" ON "Token"("parentId");
