CREATE TABLE "recoveries" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"campaign_id" bigint NOT NULL,
	"node" text NOT NULL,
	"reason" text NOT NULL,
	"instance" text NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"finished_at" timestamp with time zone DEFAULT now() NOT NULL,
	"found" jsonb NOT NULL,
	"restored" integer NOT NULL,
	"reenqueued" integer NOT NULL,
	"live_state" text
);
--> statement-breakpoint
CREATE INDEX "recoveries_campaign_idx" ON "recoveries" USING btree ("campaign_id","finished_at");