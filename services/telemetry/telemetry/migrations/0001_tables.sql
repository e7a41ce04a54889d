-- The original's telemetry tables (init.sql names and columns), utf8mb4_unicode_ci.

-- One row = one ambulance task (POST /car/task), positions from the crew app.
CREATE TABLE IF NOT EXISTS `car_track` (
  `id` int NOT NULL AUTO_INCREMENT,
  `uid` varchar(10) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `status` varchar(50) COLLATE utf8mb4_unicode_ci DEFAULT 'open',
  `mobile` varchar(20) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `userName` varchar(100) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `room` varchar(50) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `latitude` decimal(12,9) DEFAULT NULL,
  `longitude` decimal(12,9) DEFAULT NULL,
  `accuracy` decimal(20,6) DEFAULT NULL,
  `speed` int DEFAULT NULL,
  `heading` int DEFAULT NULL,
  `altitude` float DEFAULT NULL,
  `altitudeAccuracy` float DEFAULT NULL,
  `dtmUpdated` datetime DEFAULT CURRENT_TIMESTAMP,
  `dtmCreated` datetime DEFAULT CURRENT_TIMESTAMP,
  `dtmStarted` datetime DEFAULT NULL,
  `dtmArrived` datetime DEFAULT NULL,
  `dtmCanceled` datetime DEFAULT NULL,
  `dtmCompleted` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `room` (`room`),
  KEY `uid` (`uid`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Raw LiveKit webhook events (fed by recording's recording.webhook.received). MEDIUMTEXT instead of the
-- original's TEXT: a webhook body over 64 KiB must not fail the insert.
CREATE TABLE IF NOT EXISTS `data_log` (
  `id` int NOT NULL AUTO_INCREMENT,
  `data` mediumtext COLLATE utf8mb4_unicode_ci,
  `dtmCreated` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `dtmCreated` (`dtmCreated`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Cache of the radio location API's devices, keyed by the API's device id.
CREATE TABLE IF NOT EXISTS `radio_devices` (
  `id` int NOT NULL AUTO_INCREMENT,
  `deviceId` varchar(100) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `deviceName` varchar(200) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `deviceType` varchar(50) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `status` varchar(20) COLLATE utf8mb4_unicode_ci DEFAULT 'active',
  `locationId` int DEFAULT NULL,
  `frequency` varchar(50) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `radioNo` varchar(50) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `radioName` varchar(50) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `serialNo` varchar(50) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `channel` varchar(50) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `dtmCreated` datetime DEFAULT NULL,
  `dtmUpdated` datetime DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Latest fix per radio (keyed by the API's id). The original table lacked the columns its upsert wrote
-- (radioNo .. emergency), so every upsert failed; they are added here.
CREATE TABLE IF NOT EXISTS `radio_locations` (
  `logId` int DEFAULT NULL,
  `id` int NOT NULL AUTO_INCREMENT,
  `locationName` varchar(200) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `latitude` decimal(12,9) DEFAULT NULL,
  `longitude` decimal(12,9) DEFAULT NULL,
  `address` text COLLATE utf8mb4_unicode_ci,
  `description` text COLLATE utf8mb4_unicode_ci,
  `status` varchar(20) COLLATE utf8mb4_unicode_ci DEFAULT 'active',
  `dtmCreated` datetime DEFAULT NULL,
  `dtmUpdated` datetime DEFAULT NULL,
  `radioNo` varchar(50) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `radioName` varchar(100) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `accuracy` double DEFAULT NULL,
  `gpsDateTime` datetime DEFAULT NULL,
  `speed` double DEFAULT NULL,
  `emergency` int DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `radioNo` (`radioNo`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
