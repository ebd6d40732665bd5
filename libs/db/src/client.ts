import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/prisma/client.js';

export const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/portcullis';

/** A Prisma client over node-postgres (Prisma 7 has no bundled engine; the adapter is the driver). */
export function createPrismaClient(connectionString: string = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL): PrismaClient {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString }) });
}
