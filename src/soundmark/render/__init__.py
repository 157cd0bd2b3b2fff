"""Pictures of what the engine decided: why a clip matched (explain.py), a scan's timeline
(timeline.py); figure.py writes them as PNG or SVG. matplotlib's object API only (no pyplot):
no display, no process-wide figure registry."""
