-- Outgoing SMS: one row per message, the record of its delivery. `id` is the idempotency key (also the arq
-- job id), so a message is enqueued once and a finished row is never sent again.
CREATE TABLE IF NOT EXISTS `sms_message` (
  `id` char(32) NOT NULL,
  `linkID` varchar(50) NOT NULL DEFAULT '',
  `room` varchar(50) NOT NULL DEFAULT '',
  `mobile` varchar(20) NOT NULL,
  `sender` varchar(100) NOT NULL DEFAULT '',
  `text` text NOT NULL,
  `kind` varchar(20) NOT NULL DEFAULT 'link',
  `status` varchar(10) NOT NULL DEFAULT 'queued',
  `attempts` int NOT NULL DEFAULT '0',
  `last_error` varchar(500) NOT NULL DEFAULT '',
  `dtmCreated` datetime NOT NULL,
  `dtmUpdated` datetime NOT NULL,
  `dtmSent` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `idx_sms_message_status_created` (`status`, `dtmCreated`),
  KEY `idx_sms_message_linkID` (`linkID`),
  KEY `idx_sms_message_mobile` (`mobile`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
