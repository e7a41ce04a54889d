-- `version` = the time (epoch ms) of the event, or of the snapshot page (telemetry.events.rebuild), that last wrote
-- the row. A write older than the row only fills the columns the row lacks (NULL): a rebuild's snapshot never
-- overwrites what a newer event wrote, and a row an event created early still gets the rest of its columns.
ALTER TABLE `car_room_link` ADD COLUMN IF NOT EXISTS `version` bigint NOT NULL DEFAULT 0;
ALTER TABLE `car_room` ADD COLUMN IF NOT EXISTS `version` bigint NOT NULL DEFAULT 0;
ALTER TABLE `stats_link` ADD COLUMN IF NOT EXISTS `version` bigint NOT NULL DEFAULT 0;
ALTER TABLE `stats_case` ADD COLUMN IF NOT EXISTS `version` bigint NOT NULL DEFAULT 0;
ALTER TABLE `stats_participant` ADD COLUMN IF NOT EXISTS `version` bigint NOT NULL DEFAULT 0;
