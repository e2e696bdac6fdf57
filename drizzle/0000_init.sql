CREATE TABLE "campaigns" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "campaigns_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"name" text NOT NULL,
	"stock" integer NOT NULL,
	"per_user_limit" integer DEFAULT 1 NOT NULL,
	"opens_at" timestamp with time zone,
	"closes_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "campaigns_stock_positive" CHECK ("campaigns"."stock" >= 1),
	CONSTRAINT "campaigns_limit_positive" CHECK ("campaigns"."per_user_limit" >= 1),
	CONSTRAINT "campaigns_window_order" CHECK ("campaigns"."opens_at" IS NULL OR "campaigns"."closes_at" IS NULL OR "campaigns"."opens_at" < "campaigns"."closes_at")
);
--> statement-breakpoint
CREATE TABLE "claims" (
	"claim_id" uuid PRIMARY KEY NOT NULL,
	"campaign_id" bigint NOT NULL,
	"user_id" text NOT NULL,
	"sequence" integer NOT NULL,
	"claimed_at" timestamp with time zone NOT NULL,
	"persisted_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "claims_campaign_sequence_key" UNIQUE("campaign_id","sequence"),
	CONSTRAINT "claims_sequence_positive" CHECK ("claims"."sequence" >= 1)
);
--> statement-breakpoint
CREATE TABLE "failed_claims" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"stream" text NOT NULL,
	"entry_id" text NOT NULL,
	"fields" jsonb NOT NULL,
	"error" text NOT NULL,
	"attempts" integer NOT NULL,
	"failed_at" timestamp with time zone DEFAULT now() NOT NULL,
	"resolved_at" timestamp with time zone,
	CONSTRAINT "failed_claims_stream_entry_key" UNIQUE("stream","entry_id")
);
--> statement-breakpoint
ALTER TABLE "claims" ADD CONSTRAINT "claims_campaign_id_campaigns_id_fk" FOREIGN KEY ("campaign_id") REFERENCES "public"."campaigns"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "claims_campaign_user_idx" ON "claims" USING btree ("campaign_id","user_id");