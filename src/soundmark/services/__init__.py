"""Use cases shared by every transport (HTTP routes, WebSocket, CLI, stream monitor):
recognition_pool.py runs decode → fingerprint → match in a bounded pool of worker processes;
catalog.py holds the custom catalog's upload-slot replacement."""
