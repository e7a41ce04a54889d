-- Tables of the conference area, with the original's names, columns, types, defaults and keys (init.sql).
-- node_livekit first: room_conference.nodeLivekitId references it.

CREATE TABLE IF NOT EXISTS `node_livekit` (
  `id`               int NOT NULL AUTO_INCREMENT,
  `nodeName`         varchar(50)  DEFAULT NULL,
  `livekitHost`      varchar(100) DEFAULT NULL,
  `livekitLocal`     varchar(100) DEFAULT NULL,
  `livekitApiKey`    varchar(100) DEFAULT NULL,
  `livekitApiSecret` varchar(100) DEFAULT NULL,
  `lastHealthCheck`  datetime DEFAULT NULL,
  `description`      text,
  PRIMARY KEY (`id`),
  KEY `id` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `room_conference` (
  `id`                    int unsigned NOT NULL AUTO_INCREMENT,
  `nodeLivekitId`         int DEFAULT NULL,
  `status`                varchar(10)  DEFAULT NULL,
  `roomType`              varchar(10)  DEFAULT NULL,
  `room`                  varchar(50)  DEFAULT NULL,
  `service`               int DEFAULT NULL,
  `recordStatus`          int DEFAULT '0',
  `recordId`              varchar(50)  DEFAULT NULL,
  `autoRecord`            int DEFAULT '0',
  `recordType`            varchar(50)  DEFAULT NULL,
  `encodingOptionsPreset` varchar(50)  DEFAULT NULL,
  `chatEnabled`           int DEFAULT '0',
  `messageUnread`         int DEFAULT '0',
  `agentSeen`             datetime DEFAULT NULL,
  `userAgent`             tinytext,
  `webSocketURL`          tinytext,
  `dtmCreated`            datetime DEFAULT NULL,
  `dtmUpdated`            datetime DEFAULT NULL,
  `dtmClosed`             datetime DEFAULT NULL,
  `dtmExpired`            datetime DEFAULT NULL,
  `dtmRoomStarted`        datetime DEFAULT NULL,
  `dtmRoomFinished`       datetime DEFAULT NULL,
  `dtmStartRecord`        datetime DEFAULT NULL,
  `dtmStopRecord`         datetime DEFAULT NULL,
  `sync_at`               datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `idx_room_conference_status_dtmexpired` (`status`,`dtmExpired`),
  KEY `FK_room_conference_node_livekit` (`nodeLivekitId`) USING BTREE,
  KEY `idx_room_conference_room` (`room`),
  KEY `idx_room_conference_service` (`service`),
  CONSTRAINT `FK_room_conference_node_livekit` FOREIGN KEY (`nodeLivekitId`) REFERENCES `node_livekit` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- dtmcreated/dtmupdated are lower-case in the original schema; dtmupdated is NOT NULL without a default.
CREATE TABLE IF NOT EXISTS `room_user` (
  `id`                     int NOT NULL AUTO_INCREMENT,
  `room`                   varchar(100) DEFAULT NULL,
  `identity`               varchar(50)  DEFAULT NULL,
  `color`                  varchar(50)  DEFAULT NULL,
  `userName`               varchar(100) DEFAULT NULL,
  `userType`               varchar(50)  DEFAULT NULL,
  `status`                 varchar(11)  DEFAULT NULL,
  `socketId`               varchar(50)  DEFAULT NULL,
  `conference`             int DEFAULT '1',
  `cameraMicrophoneStatus` varchar(100) DEFAULT NULL,
  `camera`                 tinyint(1) DEFAULT '1',
  `microphone`             tinyint(1) DEFAULT '1',
  `latitude`               varchar(100) DEFAULT NULL,
  `longitude`              varchar(100) DEFAULT NULL,
  `accuracy`               varchar(100) DEFAULT NULL,
  `userAgent`              text,
  `dtmcreated`             datetime DEFAULT NULL,
  `dtmupdated`             datetime NOT NULL,
  PRIMARY KEY (`id`),
  KEY `idx_room_user_identity` (`identity`),
  KEY `idx_room_user_socketId` (`socketId`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `color_scheme` (
  `id`        int unsigned NOT NULL AUTO_INCREMENT,
  `color_hex` varchar(50) DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `case_data` (
  `id`              int unsigned NOT NULL AUTO_INCREMENT,
  `caseId`          int NOT NULL,
  `service`         int DEFAULT NULL,
  `roomId`          int DEFAULT NULL,
  `operationNumber` varchar(100) DEFAULT NULL,
  `status`          varchar(50)  DEFAULT NULL,
  `hn`              varchar(50)  DEFAULT NULL,
  `patientMobile`   varchar(20)  DEFAULT NULL,
  `mobileCreated`   varchar(50)  DEFAULT NULL,
  `caseType`        varchar(50)  DEFAULT NULL,
  `userName`        varchar(100) DEFAULT NULL,
  `dtmCreated`      datetime DEFAULT NULL,
  `organization`    varchar(50)  DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
