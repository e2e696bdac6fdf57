ALTER TABLE "campaigns" ADD COLUMN "queue_order" text;--> statement-breakpoint
ALTER TABLE "campaigns" ADD COLUMN "queue_admit_per_second" integer;--> statement-breakpoint
ALTER TABLE "campaigns" ADD COLUMN "queue_admit_seconds" integer;--> statement-breakpoint
ALTER TABLE "campaigns" ADD COLUMN "queue_seed" text;--> statement-breakpoint
ALTER TABLE "campaigns" ADD CONSTRAINT "campaigns_queue_valid" CHECK (("campaigns"."queue_order" IS NULL AND "campaigns"."queue_admit_per_second" IS NULL
    AND "campaigns"."queue_admit_seconds" IS NULL AND "campaigns"."queue_seed" IS NULL) OR ("campaigns"."queue_order" IN ('fifo', 'shuffle')
    AND "campaigns"."queue_admit_per_second" BETWEEN 1 AND 100000 AND "campaigns"."queue_admit_seconds" BETWEEN 1 AND 86400
    AND "campaigns"."queue_seed" IS NOT NULL));