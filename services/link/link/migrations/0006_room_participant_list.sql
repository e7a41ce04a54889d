-- GET /link/getdetail reads a room's live participants as one JSON array kept per room, rewritten when a participant
-- event is applied (rare), instead of aggregating room_participant_view rows on every request (frequent): MariaDB
-- builds that GROUP_CONCAT over a MEDIUMTEXT column in an on-disk temporary table, most of getdetail's DB CPU.
-- `participants`: the room's rows of room_participant_view with a participant, ordered by joinedAt, identity.
CREATE TABLE IF NOT EXISTS `room_participant_list` (
  `room` varchar(50) NOT NULL,
  `participants` mediumtext NOT NULL,
  PRIMARY KEY (`room`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Rooms with participants before this table (a list longer than group_concat_max_len is cut: not valid JSON, so
-- getdetail reads that room's rows apart until its next participant event rewrites the list).
INSERT IGNORE INTO `room_participant_list` (`room`, `participants`)
SELECT `room`, CONCAT('[', GROUP_CONCAT(`participant` ORDER BY `joinedAt`, `identity` SEPARATOR ','), ']')
FROM `room_participant_view` WHERE `participant` IS NOT NULL GROUP BY `room`;
