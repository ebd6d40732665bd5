-- DropIndex
DROP INDEX "Event_sessionId_seq_idx";

