-- Read models of /link/getdetail (issue 5): what link needs of conference's rooms and room users and of
-- LiveKit's live participant list, fed by events (link.readmodels) so the route answers without asking
-- conference. Keys use the same collation as conference's columns, so names match as its WHERE room = ? does.
-- `version` = time of the event (epoch ms) that wrote the row; an older event never overwrites a newer one.

-- A room: conference's getRoomDetail object as published (`detail`, JSON, recordDuration computed at read
-- time from its dtmStartRecord), plus what decides who may sign its tokens. `complete` = 1 when the row was
-- created by the room's conference.room.created event: every later room_user change of the room then
-- reached room_user_view too (0: filled by the RPC fallback for a room older than the events).
CREATE TABLE IF NOT EXISTS `room_view` (
  `room` varchar(50) NOT NULL,
  `id` int unsigned DEFAULT NULL,
  `status` varchar(10) DEFAULT NULL,
  `roomType` varchar(10) DEFAULT NULL,
  `detail` mediumtext NOT NULL,
  `nodeLivekitId` int DEFAULT NULL,
  `usesDefaultKey` tinyint NOT NULL DEFAULT '1',
  `complete` tinyint NOT NULL DEFAULT '0',
  `version` bigint NOT NULL DEFAULT '0',
  PRIMARY KEY (`room`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A room's user (conference's room_user, oldest row of (room, identity)): colour and name reused in tokens.
CREATE TABLE IF NOT EXISTS `room_user_view` (
  `room` varchar(100) NOT NULL,
  `identity` varchar(50) NOT NULL,
  `color` varchar(50) DEFAULT NULL,
  `userName` varchar(100) DEFAULT NULL,
  `userType` varchar(50) DEFAULT NULL,
  `userAgent` text,
  `version` bigint NOT NULL DEFAULT '0',
  PRIMARY KEY (`room`, `identity`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- LiveKit's participants of a room (from recording's webhook events); `participant` NULL = left (kept as a
-- tombstone so a late "joined" older than the "left" is ignored).
CREATE TABLE IF NOT EXISTS `room_participant_view` (
  `room` varchar(50) NOT NULL,
  `identity` varchar(255) NOT NULL,
  `participant` mediumtext,
  `joinedAt` bigint NOT NULL DEFAULT '0',
  `version` bigint NOT NULL DEFAULT '0',
  PRIMARY KEY (`room`, `identity`),
  KEY `idx_room_participant_view_room_joined` (`room`, `joinedAt`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- conference's colour palette (color_scheme), refreshed from rpc.conference.palette; kept here so a link
-- replica started while conference is down still picks colours.
CREATE TABLE IF NOT EXISTS `palette_view` (
  `position` int NOT NULL,
  `color` varchar(50) NOT NULL,
  PRIMARY KEY (`position`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
