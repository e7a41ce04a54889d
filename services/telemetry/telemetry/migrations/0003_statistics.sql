-- Statistics read model (issue 6): what /stats/* read, fed by link, conference and recording events
-- (telemetry.statistics.events). The original joined link_connect, room_conference, case_data, room_user and
-- data_log at query time; these tables hold the same facts, owned by telemetry.

-- One row per link (link_connect's columns the statistics list). `id` = order first seen (link's events come
-- in its commit order); `linkRowId` = link_connect.id when link's event carries it.
CREATE TABLE IF NOT EXISTS `stats_link` (
  `id` int unsigned NOT NULL AUTO_INCREMENT,
  `linkID` varchar(50) COLLATE utf8mb4_unicode_ci NOT NULL,
  `linkRowId` int unsigned DEFAULT NULL,
  `recordId` int DEFAULT NULL,
  `mobile` varchar(20) COLLATE utf8mb4_unicode_ci NOT NULL DEFAULT '',
  `domainIndex` int DEFAULT '0',
  `share` int DEFAULT '0',
  `enabled` int DEFAULT '1',
  `userName` varchar(100) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `room` varchar(50) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `userType` varchar(10) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `linkType` varchar(100) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `crmSender` varchar(100) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `accuracy` varchar(50) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `latitude` decimal(12,9) DEFAULT NULL,
  `longitude` decimal(12,9) DEFAULT NULL,
  `patientLatitude` decimal(12,9) DEFAULT NULL,
  `patientLongitude` decimal(12,9) DEFAULT NULL,
  `service` int DEFAULT NULL,
  `errorVideo` text COLLATE utf8mb4_unicode_ci,
  `errorLocation` text COLLATE utf8mb4_unicode_ci,
  `os` text COLLATE utf8mb4_unicode_ci,
  `userAgent` text COLLATE utf8mb4_unicode_ci,
  `oneTimeLink` int DEFAULT '0',
  `dtmCreated` datetime DEFAULT NULL,
  `dtmExpired` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_stats_link_linkID` (`linkID`),
  KEY `idx_stats_link_created` (`dtmCreated`),
  KEY `idx_stats_link_room` (`room`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Cases by room name (case_data joined to room_conference in the original). caseId is numbered per service.
CREATE TABLE IF NOT EXISTS `stats_case` (
  `id` int unsigned NOT NULL AUTO_INCREMENT,
  `service` int NOT NULL,
  `caseId` int NOT NULL,
  `room` varchar(50) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `organization` varchar(50) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `status` varchar(50) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_stats_case` (`service`, `caseId`),
  KEY `idx_stats_case_room` (`room`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Room participants (room_user), one row per (room, identity); `id` = order first seen ("newest" = highest).
CREATE TABLE IF NOT EXISTS `stats_participant` (
  `id` int unsigned NOT NULL AUTO_INCREMENT,
  `room` varchar(50) COLLATE utf8mb4_unicode_ci NOT NULL,
  `identity` varchar(100) COLLATE utf8mb4_unicode_ci NOT NULL,
  `userName` varchar(100) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `userType` varchar(10) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_stats_participant` (`room`, `identity`),
  KEY `idx_stats_participant_user` (`userName`, `userType`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- LiveKit `track_published` webhooks (the data_log rows the original scanned with JSON_EXTRACT per request).
CREATE TABLE IF NOT EXISTS `stats_track` (
  `id` int unsigned NOT NULL AUTO_INCREMENT,
  `eventId` varchar(100) COLLATE utf8mb4_unicode_ci NOT NULL,
  `identity` varchar(255) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `roomName` varchar(255) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `source` varchar(50) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `data` mediumtext COLLATE utf8mb4_unicode_ci,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_stats_track_event` (`eventId`),
  KEY `idx_stats_track_identity` (`identity`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
