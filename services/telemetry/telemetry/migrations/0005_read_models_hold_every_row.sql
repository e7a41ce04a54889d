-- Read models hold every row of their owners (issue 14: a migrated installation has rows today's writes never make):
-- * a link without linkID (link_connect.linkID is nullable; the original counted such a row in /stats/* and read it
--   for car tasks): stats_link and car_room_link take it, keyed by link's row id (linkRowId, unique; NULLs allowed
--   for rows an event made before its id was known);
-- * stats_participant as wide as conference's room_user (room varchar(100), userType varchar(50)), stats_case's room
--   as wide as room_user's too.
ALTER TABLE `stats_link` MODIFY `linkID` varchar(50) COLLATE utf8mb4_unicode_ci DEFAULT NULL;
ALTER TABLE `stats_link` ADD UNIQUE KEY IF NOT EXISTS `uq_stats_link_row` (`linkRowId`);
ALTER TABLE `car_room_link` ADD COLUMN IF NOT EXISTS `linkRowId` int unsigned DEFAULT NULL AFTER `linkID`;
ALTER TABLE `car_room_link` MODIFY `linkID` varchar(50) COLLATE utf8mb4_unicode_ci DEFAULT NULL;
ALTER TABLE `car_room_link` ADD UNIQUE KEY IF NOT EXISTS `uq_car_room_link_row` (`linkRowId`);
ALTER TABLE `stats_participant` MODIFY `room` varchar(100) COLLATE utf8mb4_unicode_ci NOT NULL;
ALTER TABLE `stats_participant` MODIFY `userType` varchar(50) COLLATE utf8mb4_unicode_ci DEFAULT NULL;
ALTER TABLE `stats_case` MODIFY `room` varchar(100) COLLATE utf8mb4_unicode_ci DEFAULT NULL;
