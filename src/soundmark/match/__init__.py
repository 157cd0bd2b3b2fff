"""Matching: query hashes → index hits → offset votes → verified, scored matches."""
