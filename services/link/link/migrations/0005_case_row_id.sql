-- The case row's own id (conference's case_data.id, carried by CaseChanged.caseRowId): the original's /link/history
-- and queue rows show it as `caseId`. NULL for a case whose events predate the field, until its next update.
ALTER TABLE `room_case_view` ADD COLUMN IF NOT EXISTS `caseRowId` int unsigned DEFAULT NULL AFTER `caseId`;
