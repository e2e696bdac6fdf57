ALTER TABLE "claims" DROP CONSTRAINT "claims_campaign_id_campaigns_id_fk";
