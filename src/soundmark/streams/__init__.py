"""Live stream monitoring: sources (source.py), the song tracker, monitor, callbacks and longpoll."""
