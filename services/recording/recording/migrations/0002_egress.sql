-- Egress (recording) state owned by the recording service.
-- room_setting: conference's record settings of each room (autoRecord, recordType, preset, tenant), a read model
--   kept from conference's room events (recording never reads conference's tables).
-- room_egress: the one egress a room may have (primary key = room): claimed before LiveKit is asked, so two
--   replicas or two simultaneous joins never start two; its row count is what EGRESS_LIMIT bounds.
-- track_state: TrackComposite rooms: the camera/microphone tracks seen per participant (was process memory).
-- encode_job: the encode API call queued after an egress ended or a video was uploaded (one per record_media row).
CREATE TABLE IF NOT EXISTS `room_setting` (
  `room` varchar(50) NOT NULL,
  `autoRecord` int NOT NULL DEFAULT 0,
  `recordType` varchar(50) NOT NULL DEFAULT '',
  `encodingOptionsPreset` varchar(50) NOT NULL DEFAULT '',
  `service` int DEFAULT NULL,
  `status` varchar(20) NOT NULL DEFAULT '',
  `dtmUpdated` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (`room`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `room_egress` (
  `room` varchar(50) NOT NULL,
  `egressId` varchar(50) NOT NULL DEFAULT '',
  `recordType` varchar(50) NOT NULL DEFAULT '',
  `state` varchar(20) NOT NULL DEFAULT 'starting' COMMENT 'starting (claimed, LiveKit asked) or active',
  `dtmClaimed` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (`room`),
  KEY `ix_room_egress_egress` (`egressId`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `track_state` (
  `room` varchar(50) NOT NULL,
  `identity` varchar(100) NOT NULL,
  `videoTrack` varchar(100) NOT NULL DEFAULT '',
  `audioTrack` varchar(100) NOT NULL DEFAULT '',
  `record` tinyint NOT NULL DEFAULT 0,
  PRIMARY KEY (`room`, `identity`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `encode_job` (
  `recordId` int NOT NULL COMMENT 'record_media.id',
  `status` varchar(20) NOT NULL DEFAULT 'queued' COMMENT 'queued, sent, failed, removed',
  `attempts` int NOT NULL DEFAULT 0,
  `lastError` varchar(500) NOT NULL DEFAULT '',
  `dtmCreated` datetime NOT NULL,
  `dtmUpdated` datetime NOT NULL,
  PRIMARY KEY (`recordId`),
  KEY `ix_encode_job_status` (`status`, `dtmCreated`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
