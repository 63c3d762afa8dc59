"""The sync service: leader activity in; one ordered, gap-free, deduplicated log per source out."""
