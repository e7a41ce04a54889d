"""Third-party APIs recording calls: LiveKit's Egress API (:mod:`.egress`) and the encode API (:mod:`.encode`)."""
