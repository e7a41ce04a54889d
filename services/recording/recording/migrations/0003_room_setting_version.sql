-- room_setting.version = the time (epoch ms) of the conference room event (or snapshot page, see
-- recording.events.rebuild) that wrote the row: an older one never overwrites a newer one. 0: asked of conference
-- on a miss (any event is newer).
ALTER TABLE `room_setting` ADD COLUMN IF NOT EXISTS `version` bigint NOT NULL DEFAULT 0;
