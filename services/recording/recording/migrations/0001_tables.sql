-- Tables of the recording service, with the original names and columns (init.sql of the original).
-- Differences: `files` uses utf8mb4_unicode_ci (the original had utf8mb4_0900_ai_ci), `record_media` gets an
-- index on egressId (egress webhooks look rows up by it), and webhook_receipt is new: one row per LiveKit
-- webhook event id, so a redelivered event is applied once.
CREATE TABLE IF NOT EXISTS `record_media` (
  `id` int NOT NULL AUTO_INCREMENT,
  `egressId` varchar(50) DEFAULT NULL,
  `room` varchar(50) DEFAULT NULL,
  `fileName` varchar(255) DEFAULT NULL,
  `filePath` varchar(500) DEFAULT NULL,
  `fileSize` int DEFAULT NULL,
  `duration` int DEFAULT NULL,
  `recordType` varchar(50) DEFAULT NULL,
  `status` varchar(20) DEFAULT 'completed',
  `dtmCreated` datetime DEFAULT NULL,
  `dtmCompleted` datetime DEFAULT NULL,
  `hls` varchar(100) DEFAULT NULL,
  `encode` int DEFAULT NULL COMMENT '0=waiting for encode, 1=encoded, 2=failed, 3=kept as is',
  `uploader` varchar(100) DEFAULT NULL,
  `startRecord` datetime DEFAULT NULL,
  `endRecord` datetime DEFAULT NULL,
  `dtmUpdated` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `ix_record_media_egress` (`egressId`),
  KEY `ix_record_media_type_start` (`recordType`, `startRecord`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `files` (
  `id` int NOT NULL AUTO_INCREMENT,
  `linkId` text,
  `elementId` varchar(50) DEFAULT NULL,
  `filename` varchar(255) NOT NULL,
  `url` varchar(512) NOT NULL,
  `thumbnail` varchar(512) DEFAULT NULL,
  `fileType` varchar(50) DEFAULT NULL,
  `size` bigint NOT NULL,
  `mimetype` varchar(100) DEFAULT NULL,
  `width` int DEFAULT NULL,
  `height` int DEFAULT NULL,
  `createdAt` timestamp NULL DEFAULT CURRENT_TIMESTAMP,
  `updatedAt` timestamp NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (`id`) USING BTREE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per applied LiveKit webhook event (LiveKit's event id); INSERT IGNORE decides first delivery.
CREATE TABLE IF NOT EXISTS `webhook_receipt` (
  `eventId` varchar(64) NOT NULL,
  `event` varchar(50) NOT NULL,
  `room` varchar(100) DEFAULT NULL,
  `createdAt` bigint DEFAULT NULL,
  `dtmReceived` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (`eventId`),
  KEY `ix_webhook_receipt_received` (`dtmReceived`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
