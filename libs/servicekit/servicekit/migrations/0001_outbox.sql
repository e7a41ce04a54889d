-- Events written in the same transaction as the change they describe; a relay publishes them to JetStream.
CREATE TABLE IF NOT EXISTS outbox (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  event_id CHAR(32) NOT NULL,
  subject VARCHAR(191) NOT NULL,
  payload MEDIUMBLOB NOT NULL,
  headers TEXT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  published_at DATETIME(3) NULL,
  attempts INT NOT NULL DEFAULT 0,
  UNIQUE KEY uq_outbox_event (event_id),
  KEY ix_outbox_pending (published_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Ids of consumed events, so a redelivered event is applied once.
CREATE TABLE IF NOT EXISTS handled_event (
  consumer VARCHAR(64) NOT NULL,
  event_id CHAR(32) NOT NULL,
  handled_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (consumer, event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
