-- AlterTable
ALTER TABLE "Connection" ADD COLUMN     "kubeCaPem" TEXT,
ADD COLUMN     "kubeImpersonate" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "kubeServer" TEXT,
ADD COLUMN     "sshHostKeys" TEXT[] DEFAULT ARRAY[]::TEXT[];

-- CreateTable
CREATE TABLE "GatewayPoolKeys" (
    "pool" TEXT NOT NULL,
    "masterKeyId" TEXT NOT NULL,
    "sshHostKeyEncrypted" TEXT NOT NULL,
    "sshHostPublicKey" TEXT NOT NULL,
    "sshUserCaEncrypted" TEXT NOT NULL,
    "sshUserCaPublicKey" TEXT NOT NULL,
    "sshHostCaEncrypted" TEXT NOT NULL,
    "sshHostCaPublicKey" TEXT NOT NULL,
    "tlsCaPem" TEXT NOT NULL,
    "tlsCaKeyEncrypted" TEXT NOT NULL,
    "tlsCertPem" TEXT NOT NULL,
    "tlsKeyEncrypted" TEXT NOT NULL,
    "tlsHosts" TEXT[],
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "GatewayPoolKeys_pkey" PRIMARY KEY ("pool","masterKeyId")
);
