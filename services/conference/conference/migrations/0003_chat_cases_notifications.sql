-- Chat messages and notifications, with the original's names, columns and types (init.sql). case_data is in 0001.
-- The original stored chat rooms as tinytext; a prefix index serves /chat/history's WHERE room = ?.

CREATE TABLE IF NOT EXISTS `chat_message` (
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
  PRIMARY KEY (`id`),
  KEY `idx_chat_message_room` (`room`(50), `dtmCreated`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `notification` (
  `notificationId`   int NOT NULL AUTO_INCREMENT,
  `userName`         varchar(100) DEFAULT NULL,
  `mobile`           varchar(20)  DEFAULT NULL,
  `message`          varchar(500) DEFAULT NULL,
  `caseId`           int DEFAULT NULL,
  `read`             tinyint NOT NULL DEFAULT '0',
  `notificationType` varchar(50)  DEFAULT NULL,
  `relatedUrl`       varchar(500) DEFAULT NULL,
  `dtmRead`          datetime DEFAULT NULL,
  `dtmCreated`       datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`notificationId`) USING BTREE,
  KEY `notification_id` (`notificationId`) USING BTREE,
  KEY `idx_notification_read` (`read`, `notificationId`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- caseId is a running number per service: lookups and the next-number query go by (service, caseId).
-- (Plain CREATE INDEX: MySQL 8 has no IF NOT EXISTS here; the file runs once, recorded in schema_migrations.)
CREATE INDEX `idx_case_data_service_caseId` ON `case_data` (`service`, `caseId`);
CREATE INDEX `idx_case_data_roomId` ON `case_data` (`roomId`);
