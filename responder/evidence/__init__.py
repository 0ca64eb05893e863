"""CloudTrail evidence for a key: fetched per region in parallel, assembled into one
deduplicated JSONL file with a streaming summary. Memory stays flat in the event count:
events go from the API page to disk, never into a list."""
