-- rpc.conference.case.open (link's POST /link/idems): one row per opened request, so a retry of the same request
-- answers the case already opened instead of opening a second one. requestKey = "<service>:<room>".
CREATE TABLE IF NOT EXISTS `case_open_request` (
  `requestKey` varchar(80)  NOT NULL,
  `caseRowId`  int unsigned NOT NULL,
  `caseId`     int NOT NULL,
  `dtmCreated` datetime NOT NULL,
  PRIMARY KEY (`requestKey`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
