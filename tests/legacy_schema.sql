-- The original gateway's database (`conference`) as its init.sql describes it (MySQL 9.4 dump): every table,
-- column, type, default, key and foreign key, written here in this file's own layout. tests/legacy.py runs it
-- to build a legacy source for the migration tests, after the adaptations MariaDB 10.11 needs (see ADAPTATIONS
-- in tests/legacy.py: only the utf8mb4_0900_ai_ci collation; expression defaults such as DEFAULT (now()) and
-- the dump's /*!80016 ... */ clauses are accepted by MariaDB 10.11 as they are).
-- Tables come in the dump's order (alphabetical); foreign keys are created with FOREIGN_KEY_CHECKS=0, as a
-- restore of the dump does. Collation: utf8mb4_unicode_ci unless a column or table says otherwise.

CREATE TABLE `car_track` (
  `id`               int NOT NULL AUTO_INCREMENT,
  `uid`              varchar(10)  DEFAULT NULL,
  `status`           varchar(50)  DEFAULT 'open',
  `mobile`           varchar(20)  DEFAULT NULL,
  `userName`         varchar(100) DEFAULT NULL,
  `room`             varchar(50)  DEFAULT NULL,
  `latitude`         decimal(12,9) DEFAULT NULL,
  `longitude`        decimal(12,9) DEFAULT NULL,
  `accuracy`         decimal(20,6) DEFAULT NULL,
  `speed`            int DEFAULT NULL,
  `heading`          int DEFAULT NULL,
  `altitude`         float DEFAULT NULL,
  `altitudeAccuracy` float DEFAULT NULL,
  `dtmUpdated`       datetime DEFAULT (now()),
  `dtmCreated`       datetime DEFAULT (now()),
  `dtmStarted`       datetime DEFAULT NULL,
  `dtmArrived`       datetime DEFAULT NULL,
  `dtmCanceled`      datetime DEFAULT NULL,
  `dtmCompleted`     datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `room` (`room`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `case_data` (
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

CREATE TABLE `chat_message` (
  `id`               int NOT NULL AUTO_INCREMENT,
  `room`             tinytext,
  `identity`         varchar(100) DEFAULT NULL,
  `chat_identity`    varchar(100) DEFAULT NULL,
  `userName`         tinytext,
  `text`             text,
  `color`            varchar(100) DEFAULT NULL,
  `files`            text,
  `replyToMessageId` int DEFAULT NULL,
  `replyToUserName`  tinytext,
  `replyToText`      tinytext,
  `dtmCreated`       datetime DEFAULT NULL,
  `userType`         varchar(50) DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `color_scheme` (
  `id`        int unsigned NOT NULL AUTO_INCREMENT,
  `color_hex` varchar(50) DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `data_log` (
  `id`         int NOT NULL AUTO_INCREMENT,
  `data`       text,
  `dtmCreated` datetime DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The whole table is utf8mb4_0900_ai_ci in the original (so files.linkId = link_connect.linkID mixes collations).
CREATE TABLE `files` (
  `id`        int NOT NULL AUTO_INCREMENT,
  `linkId`    text COLLATE utf8mb4_0900_ai_ci,
  `elementId` varchar(50)  COLLATE utf8mb4_0900_ai_ci DEFAULT NULL,
  `filename`  varchar(255) COLLATE utf8mb4_0900_ai_ci NOT NULL,
  `url`       varchar(512) COLLATE utf8mb4_0900_ai_ci NOT NULL,
  `thumbnail` varchar(512) COLLATE utf8mb4_0900_ai_ci DEFAULT NULL,
  `fileType`  varchar(50)  COLLATE utf8mb4_0900_ai_ci DEFAULT NULL,
  `size`      bigint NOT NULL,
  `mimetype`  varchar(100) COLLATE utf8mb4_0900_ai_ci DEFAULT NULL,
  `width`     int DEFAULT NULL,
  `height`    int DEFAULT NULL,
  `createdAt` timestamp NULL DEFAULT (now()),
  `updatedAt` timestamp NULL DEFAULT (now()) ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (`id`) USING BTREE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;

-- linkID is NOT unique in the original (the suite's link_connect makes it so).
CREATE TABLE `link_connect` (
  `id`                    int unsigned NOT NULL AUTO_INCREMENT,
  `roomUserId`            int DEFAULT NULL,
  `sms`                   int DEFAULT '1',
  `recordId`              int DEFAULT NULL,
  `mobile`                varchar(20)  NOT NULL DEFAULT '',
  `linkID`                varchar(50)  DEFAULT NULL,
  `domainIndex`           int DEFAULT '0',
  `share`                 int DEFAULT '0',
  `enabled`               int DEFAULT '1',
  `userName`              varchar(100) DEFAULT NULL,
  `room`                  varchar(50)  DEFAULT NULL,
  `userType`              varchar(10)  DEFAULT NULL,
  `linkType`              varchar(100) DEFAULT NULL,
  `crmSender`             varchar(100) DEFAULT NULL,
  `accuracy`              varchar(50)  DEFAULT NULL,
  `latitude`              decimal(12,9) DEFAULT NULL,
  `longitude`             decimal(12,9) DEFAULT NULL,
  `patientLatitude`       decimal(12,9) unsigned DEFAULT NULL,
  `patientLongitude`      decimal(12,9) unsigned DEFAULT NULL,
  `patientUpdated`        datetime DEFAULT NULL,
  `service`               int DEFAULT NULL,
  `errorVideo`            text,
  `errorLocation`         text,
  `os`                    text,
  `userAgent`             text,
  `requireJoinPermission` int DEFAULT '0',
  `requireUserName`       int DEFAULT '0',
  `requirePassword`       int DEFAULT '0',
  `oneTimeLink`           int DEFAULT '0',
  `password`              tinytext,
  `isAdmin`               varchar(11)  DEFAULT '0',
  `dtmConnection`         datetime DEFAULT NULL,
  `dtmDisconnect`         datetime DEFAULT NULL,
  `dtmCreated`            datetime DEFAULT NULL,
  `dtmExpired`            datetime DEFAULT NULL,
  `sync_at`               datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `idx_link_connect_expired_enabled` (`dtmExpired`, `enabled`),
  KEY `idx_link_connect_room` (`room`),
  KEY `idx_link_connect_linkID` (`linkID`),
  KEY `FK_link_connect_room_user` (`roomUserId`),
  CONSTRAINT `FK_link_connect_room_user` FOREIGN KEY (`roomUserId`) REFERENCES `room_user` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `node_livekit` (
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

-- The original's column comments are Thai; these say the same in English.
CREATE TABLE `notification` (
  `notificationId`   int NOT NULL AUTO_INCREMENT,
  `userName`         varchar(100) DEFAULT NULL COMMENT 'who reported it',
  `mobile`           varchar(20)  DEFAULT NULL,
  `message`          varchar(500) DEFAULT NULL COMMENT 'extra message',
  `caseId`           int DEFAULT NULL COMMENT 'case number',
  `read`             tinyint NOT NULL DEFAULT '0' COMMENT '0 = unread, 1 = read',
  `notificationType` varchar(50)  DEFAULT NULL COMMENT 'kind of notification',
  `relatedUrl`       varchar(500) DEFAULT NULL COMMENT 'URL or path of the related detail page',
  `dtmRead`          datetime DEFAULT NULL COMMENT 'when it was read',
  `dtmCreated`       datetime NOT NULL DEFAULT (now()) COMMENT 'when it was created',
  PRIMARY KEY (`notificationId`) USING BTREE,
  KEY `notification_id` (`notificationId`) USING BTREE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `radio_devices` (
  `id`         int NOT NULL AUTO_INCREMENT,
  `deviceId`   varchar(100) DEFAULT NULL,
  `deviceName` varchar(200) DEFAULT NULL,
  `deviceType` varchar(50)  DEFAULT NULL,
  `status`     varchar(20)  DEFAULT 'active',
  `locationId` int DEFAULT NULL,
  `frequency`  varchar(50)  DEFAULT NULL,
  `radioNo`    varchar(50)  DEFAULT NULL,
  `radioName`  varchar(50)  DEFAULT NULL,
  `serialNo`   varchar(50)  DEFAULT NULL,
  `channel`    varchar(50)  DEFAULT NULL,
  `dtmCreated` datetime DEFAULT NULL,
  `dtmUpdated` datetime DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `radio_locations` (
  `logId`        int DEFAULT NULL,
  `id`           int NOT NULL AUTO_INCREMENT,
  `locationName` varchar(200) DEFAULT NULL,
  `latitude`     decimal(12,9) DEFAULT NULL,
  `longitude`    decimal(12,9) DEFAULT NULL,
  `address`      text,
  `description`  text,
  `status`       varchar(20)  DEFAULT 'active',
  `dtmCreated`   datetime DEFAULT NULL,
  `dtmUpdated`   datetime DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `record_media` (
  `id`           int NOT NULL AUTO_INCREMENT,
  `egressId`     varchar(50)  DEFAULT NULL,
  `room`         varchar(50)  DEFAULT NULL,
  `fileName`     varchar(255) DEFAULT NULL,
  `filePath`     varchar(500) DEFAULT NULL,
  `fileSize`     int DEFAULT NULL,
  `duration`     int DEFAULT NULL,
  `recordType`   varchar(50)  DEFAULT NULL,
  `status`       varchar(20)  DEFAULT 'completed',
  `dtmCreated`   datetime DEFAULT NULL,
  `dtmCompleted` datetime DEFAULT NULL,
  `hls`          varchar(100) DEFAULT NULL,
  `encode`       int DEFAULT NULL COMMENT '0 = waiting for encode, 1 = done, 2 = failed, 3 = kept as is',
  `uploader`     varchar(100) DEFAULT NULL,
  `startRecord`  datetime DEFAULT NULL,
  `endRecord`    datetime DEFAULT NULL,
  `dtmUpdated`   datetime DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `room_conference` (
  `id`                    int unsigned NOT NULL AUTO_INCREMENT,
  `nodeLivekitId`         int DEFAULT NULL,
  `status`                varchar(10) DEFAULT NULL,
  `roomType`              varchar(10) DEFAULT NULL,
  `room`                  varchar(50) DEFAULT NULL,
  `service`               int DEFAULT NULL,
  `recordStatus`          int DEFAULT '0',
  `recordId`              varchar(50) DEFAULT NULL,
  `autoRecord`            int DEFAULT '0',
  `recordType`            varchar(50) DEFAULT NULL,
  `encodingOptionsPreset` varchar(50) DEFAULT NULL,
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
  KEY `idx_room_conference_status_dtmexpired` (`status`, `dtmExpired`),
  KEY `FK_room_conference_node_livekit` (`nodeLivekitId`) USING BTREE,
  KEY `idx_room_conference_room` (`room`),
  KEY `idx_room_conference_service` (`service`),
  CONSTRAINT `FK_room_conference_node_livekit` FOREIGN KEY (`nodeLivekitId`) REFERENCES `node_livekit` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- dtmcreated / dtmupdated are lower-case here; dtmupdated is NOT NULL with no default.
CREATE TABLE `room_user` (
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

CREATE TABLE `services` (
  `id`                      int unsigned NOT NULL AUTO_INCREMENT,
  `name`                    varchar(200) DEFAULT NULL,
  `webTitle`                varchar(100) DEFAULT NULL,
  `prefixHLSRecordVideoSMS` varchar(50)  DEFAULT NULL,
  `prefixTextVideoSMS`      varchar(50)  DEFAULT NULL,
  `prefixTextLocationSMS`   varchar(50)  DEFAULT NULL,
  `domainsVideo`            text,
  `domainsLocation`         text,
  `smsSenderName`           text,
  `logo`                    varchar(200) DEFAULT NULL,
  `titleColor`              varchar(100) DEFAULT NULL,
  `latitude`                decimal(12,9) DEFAULT NULL,
  `longitude`               decimal(12,9) DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The whole table is utf8mb4_0900_ai_ci in the original.
CREATE TABLE `usage_status_log` (
  `id`         int unsigned NOT NULL AUTO_INCREMENT,
  `linkID`     varchar(100) COLLATE utf8mb4_0900_ai_ci DEFAULT '',
  `room`       varchar(100) COLLATE utf8mb4_0900_ai_ci DEFAULT '',
  `mobile`     varchar(100) COLLATE utf8mb4_0900_ai_ci DEFAULT NULL,
  `linkType`   varchar(100) COLLATE utf8mb4_0900_ai_ci DEFAULT NULL,
  `latitude`   decimal(12,9) DEFAULT NULL,
  `longitude`  decimal(12,9) DEFAULT NULL,
  `identity`   varchar(100) COLLATE utf8mb4_0900_ai_ci DEFAULT '',
  `userName`   text COLLATE utf8mb4_0900_ai_ci,
  `userType`   varchar(50)  COLLATE utf8mb4_0900_ai_ci DEFAULT NULL,
  `status`     varchar(50)  COLLATE utf8mb4_0900_ai_ci DEFAULT NULL,
  `userAgent`  text COLLATE utf8mb4_0900_ai_ci,
  `data`       mediumtext COLLATE utf8mb4_0900_ai_ci,
  `dtmCreated` datetime DEFAULT NULL,
  PRIMARY KEY (`id`) USING BTREE,
  KEY `idx_usage_status_log_linkid` (`linkID`),
  KEY `idx_usage_status_log_linkid_status_userType_dtmCreated` (`linkID`, `status`, `userType`, `dtmCreated`),
  KEY `idx_usage_status_log_room` (`room`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;
