ALTER TABLE "campaigns" ADD COLUMN "hold_seconds" integer;--> statement-breakpoint
ALTER TABLE "campaigns" ADD COLUMN "active_claims" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "campaigns" ADD COLUMN "archived_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "claims" ADD COLUMN "hold_expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "claims" ADD COLUMN "confirmed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "claims" ADD COLUMN "cancelled_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "claims" ADD COLUMN "cancel_reason" text;--> statement-breakpoint
ALTER TABLE "claims" ADD COLUMN "expired_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "campaigns" ADD CONSTRAINT "campaigns_hold_positive" CHECK ("campaigns"."hold_seconds" IS NULL OR "campaigns"."hold_seconds" >= 1);