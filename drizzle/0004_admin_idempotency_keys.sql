CREATE TABLE "admin_idempotency_keys" (
	"key" text NOT NULL,
	"route" text NOT NULL,
	"request_hash" text NOT NULL,
	"campaign_id" bigint NOT NULL,
	"status_code" integer NOT NULL,
	"response" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"mirrored_at" timestamp with time zone,
	CONSTRAINT "admin_idempotency_keys_pkey" PRIMARY KEY("key")
);
