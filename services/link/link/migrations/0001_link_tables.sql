-- Tables of the link service, with the original names and columns (init.sql of the original).
-- Differences: no FK to room_user (that table belongs to conference), linkID is UNIQUE (link IDs are checked
-- for uniqueness now), usage_status_log uses utf8mb4_unicode_ci like every other table.
-- `password` stays TINYTEXT (255 bytes): an argon2id hash (~100 chars) fits; old MD5 hex rows are re-hashed
-- on their first successful check.
CREATE TABLE IF NOT EXISTS `link_connect` (
  `id` int unsigned NOT NULL AUTO_INCREMENT,
  `roomUserId` int DEFAULT NULL,
  `sms` int DEFAULT '1',
  `recordId` int DEFAULT NULL,
  `mobile` varchar(20) NOT NULL DEFAULT '',
  `linkID` varchar(50) DEFAULT NULL,
  `domainIndex` int DEFAULT '0',
  `share` int DEFAULT '0',
  `enabled` int DEFAULT '1',
  `userName` varchar(100) DEFAULT NULL,
  `room` varchar(50) DEFAULT NULL,
  `userType` varchar(10) DEFAULT NULL,
  `linkType` varchar(100) DEFAULT NULL,
  `crmSender` varchar(100) DEFAULT NULL,
  `accuracy` varchar(50) DEFAULT NULL,
  `latitude` decimal(12,9) DEFAULT NULL,
  `longitude` decimal(12,9) DEFAULT NULL,
  `patientLatitude` decimal(12,9) unsigned DEFAULT NULL,
  `patientLongitude` decimal(12,9) unsigned DEFAULT NULL,
  `patientUpdated` datetime DEFAULT NULL,
  `service` int DEFAULT NULL,
  `errorVideo` text,
  `errorLocation` text,
  `os` text,
  `userAgent` text,
  `requireJoinPermission` int DEFAULT '0',
  `requireUserName` int DEFAULT '0',
  `requirePassword` int DEFAULT '0',
  `oneTimeLink` int DEFAULT '0',
  `password` tinytext,
  `isAdmin` varchar(11) DEFAULT '0',
  `dtmConnection` datetime DEFAULT NULL,
  `dtmDisconnect` datetime DEFAULT NULL,
  `dtmCreated` datetime DEFAULT NULL,
  `dtmExpired` datetime DEFAULT NULL,
  `sync_at` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_link_connect_linkID` (`linkID`),
  KEY `idx_link_connect_expired_enabled` (`dtmExpired`,`enabled`),
  KEY `idx_link_connect_room` (`room`),
  KEY `FK_link_connect_room_user` (`roomUserId`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `usage_status_log` (
  `id` int unsigned NOT NULL AUTO_INCREMENT,
  `linkID` varchar(100) DEFAULT '',
  `room` varchar(100) DEFAULT '',
  `mobile` varchar(100) DEFAULT NULL,
  `linkType` varchar(100) DEFAULT NULL,
  `latitude` decimal(12,9) DEFAULT NULL,
  `longitude` decimal(12,9) DEFAULT NULL,
  `identity` varchar(100) DEFAULT '',
  `userName` text,
  `userType` varchar(50) DEFAULT NULL,
  `status` varchar(50) DEFAULT NULL,
  `userAgent` text,
  `data` mediumtext,
  `dtmCreated` datetime DEFAULT NULL,
  PRIMARY KEY (`id`) USING BTREE,
  KEY `idx_usage_status_log_linkid` (`linkID`),
  KEY `idx_usage_status_log_linkid_status_userType_dtmCreated` (`linkID`,`status`,`userType`,`dtmCreated`),
  KEY `idx_usage_status_log_room` (`room`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `services` (
  `id` int unsigned NOT NULL AUTO_INCREMENT,
  `name` varchar(200) DEFAULT NULL,
  `webTitle` varchar(100) DEFAULT NULL,
  `prefixHLSRecordVideoSMS` varchar(50) DEFAULT NULL,
  `prefixTextVideoSMS` varchar(50) DEFAULT NULL,
  `prefixTextLocationSMS` varchar(50) DEFAULT NULL,
  `domainsVideo` text,
  `domainsLocation` text,
  `smsSenderName` text,
  `logo` varchar(200) DEFAULT NULL,
  `titleColor` varchar(100) DEFAULT NULL,
  `latitude` decimal(12,9) DEFAULT NULL,
  `longitude` decimal(12,9) DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The default tenant of the original's seed (id 999); kept when an operator already has it.
INSERT IGNORE INTO `services`
  (`id`, `name`, `webTitle`, `prefixHLSRecordVideoSMS`, `prefixTextVideoSMS`, `prefixTextLocationSMS`,
   `domainsVideo`, `domainsLocation`, `smsSenderName`, `logo`, `titleColor`, `latitude`, `longitude`)
VALUES
  (999, 'Default', '', NULL, 'สนทนาวิดีโอ', 'เรียกพิกัดปัจจุบัน',
   'https://localhost:3000', 'https://localhost:3000', 'iDEMS', 'service1.png', '#094060', NULL, NULL);
