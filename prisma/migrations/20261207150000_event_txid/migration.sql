-- Export cursor without a global write lock (issue 18): every Event row carries the id of the
-- transaction that wrote it, and the audit export pages by (txid, position) up to the oldest
-- transaction still in flight (pg_snapshot_xmin), so recorders no longer serialise their commits on
-- one advisory lock. Rows stored before this migration keep txid 0 (they are all committed, and they
-- come first, in position order, as before).
ALTER TABLE "Event" ADD COLUMN "txid" BIGINT NOT NULL DEFAULT 0;
ALTER TABLE "Event" ALTER COLUMN "txid" SET DEFAULT ((pg_current_xact_id())::text)::bigint;

-- CreateIndex
CREATE INDEX "Event_txid_position_idx" ON "Event"("txid", "position");
