-- room_file_view.linkId holds recording's files.linkId whatever its length (that column is TEXT, and the original's
-- rows carry values over 100 characters): a rebuild or an event never leaves a file out for a long linkId. Such a
-- file matches no link (link IDs are at most 50 characters), as in the original's join; the index keeps a prefix.
ALTER TABLE `room_file_view` DROP KEY IF EXISTS `ix_room_file_view_link`;
ALTER TABLE `room_file_view` MODIFY `linkId` text COLLATE utf8mb4_unicode_ci NOT NULL;
ALTER TABLE `room_file_view` ADD KEY IF NOT EXISTS `ix_room_file_view_link` (`linkId`(100));
