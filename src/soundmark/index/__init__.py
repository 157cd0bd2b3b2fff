"""The fingerprint index: hash → postings (track id, time)."""
