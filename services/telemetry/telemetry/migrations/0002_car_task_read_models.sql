-- Read model of link's links, for car tasks (the original read link_connect directly): fed by link.link.created,
-- link.location.updated and link.location.multi. ``id`` is the order telemetry learnt of a link, so the
-- "newest user link of a room" (the original's ORDER BY link_connect.id DESC) is the highest id here; the
-- room's tenant is the service of its newest link that has one; a carTracking ``getDestination`` answers the
-- newest user link with a mobile (userName, mobile and both positions).
CREATE TABLE IF NOT EXISTS `car_room_link` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `linkID` varchar(50) COLLATE utf8mb4_unicode_ci NOT NULL,
  `room` varchar(50) COLLATE utf8mb4_unicode_ci NOT NULL,
  `userType` varchar(50) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `service` int DEFAULT NULL,
  `userName` varchar(100) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `mobile` varchar(20) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `latitude` decimal(12,9) DEFAULT NULL,
  `longitude` decimal(12,9) DEFAULT NULL,
  `patientLatitude` decimal(12,9) DEFAULT NULL,
  `patientLongitude` decimal(12,9) DEFAULT NULL,
  `dtmUpdated` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `linkID` (`linkID`),
  KEY `room_userType` (`room`, `userType`, `id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;


-- Read model of conference's rooms (room_conference.service, the tenant the original used for a task's SMS and its
-- ``arrive`` destination), fed by conference.room.* (RoomChanged.service). When a room has no row here, the
-- tenant of its newest link stands in.
CREATE TABLE IF NOT EXISTS `car_room` (
  `room` varchar(50) COLLATE utf8mb4_unicode_ci NOT NULL,
  `service` int DEFAULT NULL,
  `dtmUpdated` datetime DEFAULT NULL,
  PRIMARY KEY (`room`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
