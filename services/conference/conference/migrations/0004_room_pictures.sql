-- Read models for GET /room/picture (the original joined `files` with `link_connect`, tables of recording and
-- link): which room each link belongs to (from link.link.created) and the files uploaded through links (from
-- recording.file.stored). Both are upserts keyed by the source row, so a redelivered event changes nothing.

CREATE TABLE IF NOT EXISTS `room_link_view` (
  `linkID`     varchar(100) NOT NULL,
  `room`       varchar(50)  NOT NULL,
  PRIMARY KEY (`linkID`),
  KEY `ix_room_link_view_room` (`room`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `room_file_view` (
  `fileId`     int NOT NULL,
  `linkId`     varchar(100) NOT NULL,
  `filename`   varchar(255) NOT NULL,
  `url`        varchar(512) NOT NULL,
  `width`      int DEFAULT NULL,
  `height`     int DEFAULT NULL,
  `createdAt`  datetime DEFAULT NULL,
  PRIMARY KEY (`fileId`),
  KEY `ix_room_file_view_link` (`linkId`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- GET /case/get re-creates a closed or expired room's Socket.IO namespace for a day (the original's
-- initialSocket + updateExpired). The time it did so tells a later /case/get that the namespace is live
-- (no second extension) and lets the expiry sweep drop it again when dtmExpired passes.
ALTER TABLE `room_conference` ADD COLUMN IF NOT EXISTS `dtmSocketReopened` datetime DEFAULT NULL;
