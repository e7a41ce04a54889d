-- Read models of /link/history (issue 5), fed by events (link.readmodels), never by reading other services'
-- tables. `version` = time of the event (epoch ms) that wrote the row; an older event never overwrites a newer one.

-- A case (conference's case_data) as its conference.case.* events describe it. hn and patientMobile are not in
-- those events yet: they stay NULL until conference publishes them.
CREATE TABLE IF NOT EXISTS `room_case_view` (
  `service` int NOT NULL,
  `caseId` int NOT NULL,
  `room` varchar(50) DEFAULT NULL,
  `status` varchar(50) DEFAULT NULL,
  `hn` varchar(100) DEFAULT NULL,
  `patientMobile` varchar(100) DEFAULT NULL,
  `version` bigint NOT NULL DEFAULT '0',
  PRIMARY KEY (`service`, `caseId`),
  KEY `idx_room_case_view_room` (`room`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A room's recordings (LiveKit egresses) from recording's recording.egress.* events, in the original's
-- record_media column names (egressId, room, filename, recordType, startRecord, endRecord, dtmUpdated).
CREATE TABLE IF NOT EXISTS `room_record_view` (
  `egressId` varchar(100) NOT NULL,
  `room` varchar(50) NOT NULL,
  `status` varchar(50) NOT NULL DEFAULT '',
  `filename` varchar(500) NOT NULL DEFAULT '',
  `recordType` varchar(50) NOT NULL DEFAULT '',
  `startRecord` datetime DEFAULT NULL,
  `endRecord` datetime DEFAULT NULL,
  `dtmUpdated` datetime DEFAULT NULL,
  `version` bigint NOT NULL DEFAULT '0',
  PRIMARY KEY (`egressId`),
  KEY `idx_room_record_view_room` (`room`, `startRecord`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
