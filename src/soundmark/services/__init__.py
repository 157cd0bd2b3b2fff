"""Use cases shared by every transport (HTTP routes, WebSocket, CLI, stream monitor), typed in and
out and free of web frameworks: recognition.py (recognize audio → matches with their track),
streams.py (streams and callback URLs, one set of rules), catalog.py (add files, upload slots,
metadata edits, removal), accounts.py (API tokens and their usage), jobs.py (enterprise jobs on
nodes with or without a runner); recognition_pool.py runs decode → fingerprint → match in a
bounded pool of worker processes. A refused request raises errors.ServiceError (AudD's code)."""
